// Limits a directory to 10 MiB with a project quota and shows the write that fails.
//
//   swift run ProjectQuotaExample /mnt/xfs/demo
//
// Needs root and a directory on XFS (or ext4) mounted with the prjquota option.
import GraphDriver
import ProjectQuota
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count == 2 || (arguments.count == 4 && arguments[2] == "--time-usage") else {
    print("usage: ProjectQuotaExample DIR [--time-usage FILES]   (DIR on a filesystem mounted with prjquota; run as root)")
    exit(2)
}
guard getuid() == 0 else {
    print("ProjectQuotaExample needs root: project IDs and quota limits are set by root only.")
    exit(1)
}
let home = FilePath(arguments[1])
_ = mkdir(home.string, 0o755)

let quota: ProjectQuotaControl
do {
    quota = try ProjectQuotaControl(home: home)
} catch {
    print("This host cannot limit \(home): \(error)")
    print("Mount an XFS filesystem with -o prjquota (or ext4 with the prjquota option) and try again.")
    exit(1)
}

let limited = home.appending("limited")
_ = mkdir(limited.string, 0o755)

if arguments.count == 4, let files = Int(arguments[3]) {
    // Times usage(of:) on a directory of FILES files: the quota answers without a walk.
    do {
        try quota.setLimits(QuotaLimits(size: 1 << 40), on: limited)
        for i in 0..<files { close(open(limited.appending("f\(i)").string, O_WRONLY | O_CREAT, 0o644)) }
        let clock = ContinuousClock()
        let rounds = 1000
        var usage: DiskUsage?
        let elapsed = clock.measure { for _ in 0..<rounds { usage = try? quota.usage(of: limited) } }
        print("usage of \(files) files from the quota: \(usage.map { "\($0.inodes) inodes" } ?? "-"), \(elapsed / rounds) per call")
        try quota.release(limited)
    } catch {
        print("error: \(error)")
        exit(1)
    }
    exit(0)
}
do {
    try quota.setLimits(QuotaLimits(size: 10 << 20), on: limited)
    print("\(limited) is project \(try quota.projectID(of: limited) ?? 0), limited to 10 MiB")

    let chunk = [UInt8](repeating: 0x2A, count: 1 << 20)
    let fd = open(limited.appending("data").string, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var written = 0
    while true {
        let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            print("write after \(written >> 20) MiB failed: \(Errno(rawValue: errno))")
            break
        }
        written += n
    }
    close(fd)
    if let usage = try quota.usage(of: limited) {
        print("the quota says the directory holds \(usage.bytes) bytes in \(usage.inodes) inodes")
    }
    try quota.release(limited)
    _ = unlink(limited.appending("data").string)
    _ = rmdir(limited.string)
    print("released the project ID and removed the directory")
} catch {
    print("error: \(error)")
    exit(1)
}
