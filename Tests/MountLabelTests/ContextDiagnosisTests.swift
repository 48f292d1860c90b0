import GraphDriver
@testable import MountLabel
import Testing

/// A small policy judged in Swift, so that the diagnosis can be checked on a host without
/// SELinux: it defines a few users, roles, types, and sensitivity s0 with category c0 only; a
/// role other than object_r must be allowed for the user and the type, and a level must lie in
/// the user's range (as the kernel's context check has it).
struct FakePolicy {
    let users: [String: Set<String>] = ["system_u": ["s0", "s0:c0"], "guest_u": ["s0"]]
    let roles: [String: Set<String>] = ["object_r": [], "system_r": ["container_t"]]
    let userRoles: [String: Set<String>] = ["system_u": ["system_r"], "guest_u": []]
    let types: Set<String> = ["file_t", "container_file_t", "container_t"]
    let levels: Set<String> = ["s0", "s0:c0"]

    func isValid(_ text: String) -> Bool {
        let f = text.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard f.count == 4, let range = users[f[0]], let roleTypes = roles[f[1]], types.contains(f[2]),
              levels.contains(f[3]) else { return false }
        if f[1] != "object_r" && (!(userRoles[f[0]] ?? []).contains(f[1]) || !roleTypes.contains(f[2])) { return false }
        return range.contains(f[3])
    }

    var diagnosis: ContextDiagnosis {
        ContextDiagnosis(reference: "system_u:object_r:file_t:s0", isValid: isValid)
    }
}

@Suite("SELinux context diagnosis (any host)")
struct ContextDiagnosisTests {
    let policy = FakePolicy()

    func problem(_ text: String) throws -> String? {
        policy.diagnosis.problem(with: try SELinuxContext(text))
    }

    @Test("a context the policy accepts has no problem")
    func valid() throws {
        #expect(try problem("system_u:object_r:container_file_t:s0:c0") == nil)
        #expect(try problem("system_u:system_r:container_t:s0") == nil)
    }

    @Test("categories the policy does not define: the level is named, the other parts are not")
    func undefinedCategories() throws {
        #expect(try problem("system_u:object_r:container_file_t:s0:c1,c2")
                == "its level 's0:c1,c2' is not valid (its user, role and type are)")
    }

    @Test("each refused part is named", arguments: [
        ("nobody_u:object_r:file_t:s0", "its user 'nobody_u' is not valid (its role, type and level are)"),
        ("system_u:no_r:file_t:s0", "its role 'no_r' (with type 'file_t') is not valid (its user, type and level are)"),
        ("system_u:system_r:container_file_t:s0",
         "its role 'system_r' (with type 'container_file_t') is not valid (its user, type and level are)"),
        ("system_u:no_r:no_such_t:s0", "its type 'no_such_t' is not valid (its user and level are)"),
        ("system_u:object_r:no_such_t:s0", "its type 'no_such_t' is not valid (its user, role and level are)"),
        ("system_u:object_r:no_such_t:s1", "its type 'no_such_t' and level 's1' are not valid (its user and role are)"),
    ])
    func refusedParts(_ context: String, _ expected: String) throws {
        #expect(try problem(context) == expected)
    }

    @Test("parts valid on their own but not together")
    func combinations() throws {
        #expect(try problem("guest_u:system_r:container_t:s0") == "each part is valid, but role 'system_r' is not allowed for user 'guest_u'")
        #expect(try problem("guest_u:object_r:file_t:s0:c0") == "each part is valid, but level 's0:c0' is outside the range of user 'guest_u'")
    }

    @Test("a context without a level under an MLS policy, and no usable reference")
    func noLevelNoReference() throws {
        #expect(try problem("system_u:object_r:file_t") == "it has no level, and the loaded policy (an MLS policy) needs one")
        let blind = ContextDiagnosis(reference: nil, isValid: policy.isValid)
        #expect(blind.problem(with: try SELinuxContext("system_u:object_r:file_t:s9"))?.hasPrefix("the policy refuses it") == true)
    }
}
