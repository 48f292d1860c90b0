import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `strata-bench fixtures`: makes the fixture archives without timing anything.
struct FixturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fixtures", abstract: "Make the fixture archives (minbase.tar, small.tar, large.tar) if missing.")

    @OptionGroup var work: WorkDirectoryOptions

    @Option(name: .customLong("fixture"), parsing: .upToNextOption, help: "Fixtures to make.")
    var fixtures: [Fixture] = Fixture.allCases

    func run() throws {
        let workDirectory = Shell.absolute(work.workDirectory)
        mkdir(workDirectory, 0o755)
        for fixture in fixtures {
            try fixture.make(in: workDirectory) { print("# \($0)") }
            print("\(fixture.archive(in: workDirectory)): \(formatBytes(Shell.fileSize(fixture.archive(in: workDirectory))))")
        }
    }
}

/// `strata-bench clean`: removes scratch filesystems an interrupted run left behind.
struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean", abstract: "Unmount and delete leftover scratch filesystems (fixtures are kept).")

    @OptionGroup var work: WorkDirectoryOptions

    func run() throws {
        ScratchFileSystem.removeLeftovers(workDirectory: Shell.absolute(work.workDirectory))
    }
}
