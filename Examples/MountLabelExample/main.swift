// Shows whether SELinux is on, the mount option a label becomes, and a labeled overlay mount
// where the kernel allows it.
//
//   swift run MountLabelExample [system_u:object_r:container_file_t:s0:c1,c2]
import GraphDriver
import MountLabel
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

let text = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "system_u:object_r:container_file_t:s0:c1,c2"
let label: SELinuxContext
do {
    label = try SELinuxContext(text)
} catch {
    print("\(error)")
    exit(2)
}

let labeler = SELinuxLabeler()
print("SELinux enabled: \(labeler.isEnabled)")
do {
    if let option = try labeler.mountOption(for: label) {
        print("label \(label) becomes the mount option \(option)")
    } else {
        print("label \(label) becomes no mount option: with SELinux off a context= option would be ignored")
        print("(run this on a host with SELinux enabled and a policy that defines the label's type)")
        exit(0)
    }
} catch {
    print("the label is refused: \(error)")
    exit(1)
}

guard getuid() == 0 else {
    print("mounting needs root; stopping here")
    exit(0)
}
let dir = "/tmp/strata-mountlabel-example-\(getpid())"
for sub in ["", "/lower", "/upper", "/work", "/merged"] { _ = mkdir(dir + sub, 0o755) }
_ = creat(dir + "/lower/hello", 0o644)
do {
    let option = try labeler.mountOption(for: label)!
    try Mounts.mount(source: "overlay", target: FilePath(dir + "/merged"), type: "overlay",
                     data: "lowerdir=\(dir)/lower,upperdir=\(dir)/upper,workdir=\(dir)/work,\(option)")
    print("mounted an overlay at \(dir)/merged; its file hello is labeled \(try SELinux.label(of: FilePath(dir + "/merged/hello"))?.rawValue ?? "-")")
    try Mounts.unmount(FilePath(dir + "/merged"))
} catch {
    print("the labeled mount failed: \(error)")
}
try? FileDescriptor.currentWorkingDirectory.removeTree(at: FilePath(dir))
