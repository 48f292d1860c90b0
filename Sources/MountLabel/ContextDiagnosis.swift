import CSELinux
import GraphDriver

/// Says which part of a security context the loaded policy refuses, so that a bad label is
/// reported as "its level 's0:c1,c2' is not valid" rather than as `mount(2)`'s `EINVAL`.
///
/// The policy is asked only whether whole contexts are valid (`security_check_context`): each
/// part of the context is put in turn into a context the policy accepts (the reference, the
/// initial context of files), and a part whose variant is refused is the invalid one (a role
/// goes in with the context's own type, as the policy allows a role only some types). When
/// every part passes on its own, the pairs the policy relates (user and role, user and level)
/// are tried the same way.
public struct ContextDiagnosis {
    /// A context split at its first three colons, as libselinux's `context_new` splits it: the
    /// level (the MLS range, `s0:c1,c2` or `s0-s0:c0.c1023`) is all that follows the type.
    struct Parts: Equatable {
        var user: Substring, role: Substring, type: Substring
        var level: Substring?

        init?(_ text: String) {
            let fields = text.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count >= 3, !fields.prefix(3).contains(where: \.isEmpty) else { return nil }
            user = fields[0]
            role = fields[1]
            type = fields[2]
            level = fields.count == 4 ? fields[3] : nil
            if level?.isEmpty == true { return nil }
        }

        var text: String { [user, role, type].joined(separator: ":") + (level.map { ":\($0)" } ?? "") }
    }

    /// The parts of a context, named as the message names them.
    enum Part: String, CaseIterable {
        case user, role, type, level

        func value(in parts: Parts) -> Substring? {
            switch self {
            case .user: parts.user
            case .role: parts.role
            case .type: parts.type
            case .level: parts.level
            }
        }

        func replace(in parts: inout Parts, from other: Parts) {
            switch self {
            case .user: parts.user = other.user
            case .role: parts.role = other.role
            case .type: parts.type = other.type
            case .level: parts.level = other.level
            }
        }
    }

    /// A context the policy accepts, whose parts stand in for the ones not under test; read
    /// only when a context is refused.
    let reference: () -> String?
    /// Whether the policy accepts a whole context.
    let isValid: (String) -> Bool

    /// A diagnosis against `reference` with `isValid` as the policy's judge (tests give both).
    init(reference: String?, isValid: @escaping (String) -> Bool) {
        self.init(readReference: { reference }, isValid: isValid)
    }

    private init(readReference: @escaping () -> String?, isValid: @escaping (String) -> Bool) {
        self.reference = readReference
        self.isValid = isValid
    }

    /// A diagnosis against the loaded policy: the reference is the policy's initial context of
    /// files (or of unlabeled objects). Only for a host where SELinux is enabled.
    ///
    /// The corresponding C functions are `security_get_initial_context_raw` and
    /// `security_check_context`.
    public static func loadedPolicy() -> ContextDiagnosis {
        ContextDiagnosis(readReference: {
            for name in ["file", "unlabeled"] {
                var raw: UnsafeMutablePointer<CChar>?
                if security_get_initial_context_raw(name, &raw) == 0, let raw {
                    defer { freecon(raw) }
                    return String(cString: raw)
                }
            }
            return nil
        }, isValid: { security_check_context($0) == 0 })
    }

    /// Why the policy refuses `context`, as a sentence that names the invalid part; `nil` when
    /// the policy accepts it.
    public func problem(with context: SELinuxContext) -> String? {
        let text = context.rawValue
        guard !isValid(text) else { return nil }
        guard let parts = Parts(text) else {
            return "it is not of the form user:role:type[:level]"
        }
        guard let reference = reference(), isValid(reference), let base = Parts(reference) else {
            return "the policy refuses it (no context it accepts was found to tell which part is at fault)"
        }
        if parts.level == nil && base.level != nil {
            return "it has no level, and the loaded policy (an MLS policy) needs one"
        }
        func accepts(_ replaced: [Part]) -> Bool {
            var variant = base
            for part in replaced { part.replace(in: &variant, from: parts) }
            return isValid(variant.text)
        }
        // A user, type or level in the reference (role object_r: no role checks) tells whether
        // the policy defines it. A role other than the reference's is tried with the context's
        // own type, for the policy allows a role only some types.
        let present = Part.allCases.filter { $0.value(in: parts) != nil }
        var refused: [Part] = present.filter { $0 != .role && !accepts([$0]) }
        // With its type refused, a role other than the reference's cannot be tried.
        let unchecked: [Part] = parts.role != base.role && refused.contains(.type) ? [.role] : []
        if parts.role != base.role && unchecked.isEmpty && !accepts([.role, .type]) {
            refused.append(.role)
        }
        if !refused.isEmpty {
            let named = present.filter(refused.contains).map { part in
                "\(part.rawValue) '\(part.value(in: parts)!)'" + (part == .role ? " (with type '\(parts.type)')" : "")
            }
            let accepted = present.filter { !refused.contains($0) && !unchecked.contains($0) }.map(\.rawValue)
            return "its " + Self.list(named) + (refused.count == 1 ? " is" : " are") + " not valid"
                + (accepted.isEmpty ? "" : " (its " + Self.list(accepted) + (accepted.count == 1 ? " is)" : " are)"))
        }
        if !accepts([.user, .role, .type]) {
            return "each part is valid, but role '\(parts.role)' is not allowed for user '\(parts.user)'"
        }
        if parts.level != nil && !accepts([.user, .level]) {
            return "each part is valid, but level '\(parts.level!)' is outside the range of user '\(parts.user)'"
        }
        return "each part is valid, but the policy refuses them together"
    }

    /// `a`, `a and b`, `a, b and c`.
    static func list(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " and " + items.last!
    }
}
