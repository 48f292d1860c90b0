/// Whether a bare value (not a string, array or table) is one TOML 1.0 allows: a boolean, an
/// integer (decimal, `0x`, `0o`, `0b`), a float (`inf` and `nan` too), or an offset or local
/// date-time, date or time.
///
/// ``TOMLKeyLines`` refuses any other bare value before TOMLKit sees the file: toml++ 3.4.0
/// picks a parser for a value from its first characters and, given a value those characters
/// only begin (`1979-05-27T"07:32:00Z"`), fails an assertion and aborts the process.
enum TOMLScalar {
    static func isValid(_ token: ArraySlice<UInt8>) -> Bool {
        let text = Array(token)
        if text == Array("true".utf8) || text == Array("false".utf8) { return true }
        return isInteger(text[...]) || isFloat(text[...]) || isDateOrTime(text)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    /// Digits of one kind with single underscores between them.
    private static func isDigits(_ text: ArraySlice<UInt8>, _ digit: (UInt8) -> Bool) -> Bool {
        guard let first = text.first, let last = text.last, digit(first), digit(last) else { return false }
        var previousUnderscore = false
        for c in text {
            if c == UInt8(ascii: "_") {
                if previousUnderscore { return false }
                previousUnderscore = true
            } else if digit(c) {
                previousUnderscore = false
            } else {
                return false
            }
        }
        return true
    }

    private static func dropSign(_ text: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        text.first == UInt8(ascii: "+") || text.first == UInt8(ascii: "-") ? text.dropFirst() : text
    }

    /// A decimal integer without leading zeros.
    private static func isDecimal(_ text: ArraySlice<UInt8>) -> Bool {
        guard isDigits(text, isDigit) else { return false }
        return text.count == 1 || text.first != UInt8(ascii: "0")
    }

    private static func isInteger(_ text: ArraySlice<UInt8>) -> Bool {
        if text.count > 2, text.first == UInt8(ascii: "0") {
            let digits = text.dropFirst(2)
            switch text[text.startIndex + 1] {
            case UInt8(ascii: "x"):
                return isDigits(digits) { isDigit($0) || ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "f") }
            case UInt8(ascii: "o"): return isDigits(digits) { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }
            case UInt8(ascii: "b"): return isDigits(digits) { $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: "1") }
            default: break
            }
        }
        return isDecimal(dropSign(text))
    }

    private static func isFloat(_ text: ArraySlice<UInt8>) -> Bool {
        let unsigned = dropSign(text)
        if Array(unsigned) == Array("inf".utf8) || Array(unsigned) == Array("nan".utf8) { return true }
        var mantissa = unsigned
        var exponent: ArraySlice<UInt8>?
        if let e = unsigned.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            mantissa = unsigned[..<e]
            exponent = dropSign(unsigned[(e + 1)...])
        }
        if let exponent, !isDigits(exponent, isDigit) { return false }
        if let dot = mantissa.firstIndex(of: UInt8(ascii: ".")) {
            return isDecimal(mantissa[..<dot]) && isDigits(mantissa[(dot + 1)...], isDigit)
        }
        return exponent != nil && isDecimal(mantissa)
    }

    /// `YYYY-MM-DD`, `HH:MM:SS[.frac]`, or both joined by `T`, `t` or a space, with an optional
    /// offset (`Z`, `z`, `+HH:MM`, `-HH:MM`) after a time that follows a date.
    private static func isDateOrTime(_ text: [UInt8]) -> Bool {
        func matches(_ part: ArraySlice<UInt8>, _ pattern: String) -> Bool {
            part.count == pattern.utf8.count && zip(part, pattern.utf8).allSatisfy { c, p in
                p == UInt8(ascii: "9") ? isDigit(c) : c == p
            }
        }
        func isTime(_ part: ArraySlice<UInt8>) -> Bool {
            guard part.count >= 8, matches(part.prefix(8), "99:99:99") else { return false }
            let rest = part.dropFirst(8)
            return rest.isEmpty || rest.first == UInt8(ascii: ".") && rest.count > 1 && rest.dropFirst().allSatisfy(isDigit)
        }
        let all = text[...]
        if isTime(all) { return true }
        guard all.count >= 10, matches(all.prefix(10), "9999-99-99") else { return false }
        var rest = all.dropFirst(10)
        if rest.isEmpty { return true }
        guard let separator = rest.first, separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t") || separator == UInt8(ascii: " ")
        else { return false }
        rest = rest.dropFirst()
        if rest.last == UInt8(ascii: "Z") || rest.last == UInt8(ascii: "z") {
            rest = rest.dropLast()
        } else if rest.count > 6, matches(rest.suffix(6).dropFirst(), "99:99"),
                  let sign = rest.suffix(6).first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            rest = rest.dropLast(6)
        }
        return isTime(rest)
    }
}
