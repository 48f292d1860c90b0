import ArgumentParser

/// `strata check`: verifies the store, and with `--repair` fixes what it can.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "check", abstract: "Verify the store (and with --repair, fix what can be fixed).",
        discussion: """
            Checks every layer's diff, work, merged, link file, l/ entry and lower chain; staging \
            directories no running operation holds; mounts without a count and counts without a \
            mount; l/ entries pointing at no layer; remaps a crash cut short (--repair rolls them \
            back). Prints one line per problem and a summary; \
            exits with status 1 when problems remain.
            """,
        example: "strata check --repair")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Fix what can be fixed, and say what was done.") var repair = false

    func run() throws {
        let driver = try global.openDriver()
        let report = try driver.check(repair: repair)
        var out = ""
        for problem in report.problems { out += "problem: \(problem)\n" }
        for action in report.repairs { out += "repaired: \(action)\n" }
        if repair && !report.problems.isEmpty {
            for problem in report.remaining { out += "remaining: \(problem)\n" }
        }
        out += "\(report.layers) layer(s) checked, \(report.problems.count) problem(s) found"
        if repair { out += ", \(report.problems.count - report.remaining.count) repaired, \(report.remaining.count) remaining" }
        CommandOutput.line(out).write()
        if !report.isClean { throw ExitCode(1) }
    }
}
