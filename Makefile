# Strata: build, test and run on a Debian 12 machine.
#
#   make test   install missing Debian packages, build, run every test: the host tests (XCTest and
#               Swift Testing), then the kernel tier (quota and SELinux tests in a UML guest)
#   make host-test / make kernel-test   one of the two
#   make run    build a release and run Strata's main job on the default store (/var/lib/strata):
#               import an OCI image, mount a container layer on it, run a program, show its changes
#   make bench  build a release and run the apply/export benchmark against GNU tar

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

# swift from PATH when it is there, else the toolchain under /opt/swift.
SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)

# Debian packages the build and the tests need (headers of the system libraries, and the tools
# the tests call: setfacl/getfattr, setcap, mkfs.xfs, zstd, tar, umoci and containers-storage for
# the interop tests, debootstrap for the main job's root filesystem, python3 for the crash-injection
# and concurrency programs the reliability tests run; runc, crun and busybox-static for the runtime
# tier's containers and the main job's; podman for its storage.conf examples and, with skopeo, for
# the archives the import tests make; for the containerd snapshotter: SQLite's headers, containerd
# for its container tests, Go and containerd's Go sources for containerd's snapshotter test suite,
# protoc for scripts/snapshotter/generate-protos).
DEBIAN_PACKAGES := libarchive-dev libattr1-dev libselinux1-dev libacl1-dev acl attr libcap2-bin \
                   xfsprogs zstd pkg-config tar gzip e2fsprogs util-linux umoci containers-storage \
                   debootstrap python3 podman skopeo runc crun busybox-static \
                   libsqlite3-dev containerd golang-go golang-github-containerd-containerd-dev \
                   protobuf-compiler

TEST_LOG := .build/test.log
BENCH_ARGS ?=

.PHONY: test host-test fuzz-smoke run run-containerd bench deps build build-release clean snapshotter-testsuite

# The kernel tier's targets (kernel-test and its steps); it uses SWIFT as set above.
include mk/kernel-tier.mk

## deps: install the Debian packages that are missing (apt-get update only when one is).
deps:
	@scripts/ensure-packages $(DEBIAN_PACKAGES)
	@test -x "$(SWIFT)" || { echo "swift not found (looked in PATH and /opt/swift/usr/bin)" >&2; exit 1; }

build: deps
	"$(SWIFT)" build --build-tests

# Release builds link the Swift runtime statically: `strata` then starts without loading and
# relocating a dozen Swift shared libraries (about 2 ms of a short command; README, Performance).
RELEASE_FLAGS := -c release --static-swift-stdlib

# (Products by name: the test-support targets need the Testing module, which has no static build.)
build-release: deps
	"$(SWIFT)" build $(RELEASE_FLAGS) --product strata
	"$(SWIFT)" build $(RELEASE_FLAGS) --product strata-bench

## test: every test, host first (then containerd's snapshotter suite), a short fuzzing run, then
## the kernel tier; fails on any failure
## or when nothing ran.
test: host-test
	$(MAKE) --no-print-directory snapshotter-testsuite
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory kernel-test

## fuzz-smoke: build the libFuzzer targets (tar apply; mapping and option parsers) and run each
## for FUZZ_SECONDS from the committed corpora; a crash fails the run (scripts/fuzz/).
FUZZ_SECONDS ?= 20
fuzz-smoke: build
	SWIFT="$(SWIFT)" scripts/fuzz/build.sh
	scripts/fuzz/run.sh $(FUZZ_SECONDS)

## host-test: build, then run the tests on this machine's kernel.
host-test: build
	@mkdir -p .build
	"$(SWIFT)" test --skip-build 2>&1 | tee $(TEST_LOG)
	@grep -Eq 'Test run with [1-9][0-9]* tests? .*passed' $(TEST_LOG) \
	  || { echo "make test: Swift Testing did not report a passing run of at least one test" >&2; exit 1; }

## run: Strata's main job on the default store (/var/lib/strata): import an image, mount a
## container layer on it, run a program in it, show what it changed.
run: build-release
	STRATA=.build/release/strata scripts/main-job

## run-containerd: the main job through containerd: strata-snapshotter and a private containerd,
## the minbase image imported with ctr, containers run on it with ctr run --rm (one in a user namespace).
run-containerd: deps
	"$(SWIFT)" build $(RELEASE_FLAGS) --product strata
	"$(SWIFT)" build $(RELEASE_FLAGS) --product strata-snapshotter
	scripts/main-job-containerd

## bench: apply/export timings against GNU tar (fixtures and scratch filesystems in ./bench-work).
bench: build-release
	.build/release/strata-bench run $(BENCH_ARGS)

## snapshotter-testsuite: containerd's snapshotter test suite (Go, offline) against
## strata-snapshotter and containerd's own overlayfs snapshotter, side by side.
snapshotter-testsuite: build
	scripts/snapshotter/run-testsuite .build/debug/strata-snapshotter

clean:
	rm -rf .build .build-go
