// Package kbuild builds kernel images (and out-of-tree modules against
// them) for the `vm` backend, and caches them: `splicecheck kernel build`
// and `make kernels` drive it.
//
//	res, err := kbuild.Build(ctx, kbuild.Config{
//		Debian:   "6.12",                  // or Source: a tree or a tarball
//		Patches:  []string{"fix.diff"},    // applied in order, patch -p1
//		Fragment: "minimal.config",        // merged onto tinyconfig
//		Modules:  []string{"mod/"},        // built with make -C TREE M=DIR
//		Progress: os.Stderr,
//	})
//	// res.Image: the bzImage; res.Modules: the .ko files.
//
// # The recipe
//
// A fresh build unpacks the source (a tarball with tar, a directory by a
// copy that leaves out .git) into a new tree, applies the patches in order
// with GNU patch, configures (with a fragment: make tinyconfig,
// scripts/kconfig/merge_config.sh -m, make olddefconfig, and every line of
// the fragment must survive into .config; without one, the tree's own
// .config, else make defconfig), and runs make -jN bzImage (plus modules
// when CONFIG_MODULES=y). Each module directory is copied next to its
// entry and built with make -C TREE M=COPY modules. Every command runs
// with LC_ALL=C, its output appended to the build log.
//
// # The cache
//
// Entries live in Config.CacheDir (default DefaultCacheDir():
// $XDG_CACHE_HOME or ~/.cache, then splicecheck/kernels), one directory
// per key. A kernel's key chains sha256 over RecipeVersion, the target
// architecture, the source's identity (a tarball's sha256; for a
// directory its kernel version and the path, mode, size and mtime of
// every file), the fragment's content, then each patch's content in
// order; file names and paths of the inputs are not part of it. A module's
// entry is keyed by its kernel's key and the content of its source files.
// A kernel entry holds the image, the built tree (for incremental
// rebuilds and for module builds), build.log and manifest.json; a module
// entry its built source directory, build.log and manifest.json.
//
// Because the key chains over the patches, the key after the first k
// patches is the key of the same kernel with only those patches. A miss
// whose longest such prefix is cached starts from a copy of that entry's
// built tree (mtimes kept, so make rebuilds only what the remaining
// patches touch) instead of unpacking the source: the RFC on top of a
// cached base rebuilds in about a minute and a half instead of half an
// hour.
//
// # Ownership and lifetimes
//
// Build owns one temporary directory per entry it builds, created next to
// the entries so that publishing it is one rename(2); an entry exists
// complete or not at all. Kernels are built in .build-kernel, one at a
// time per cache under an flock(2) on .lock, so that a cached tree copied
// back for an incremental build sits at the very path it was built at
// (kbuild's tools record absolute paths; a moved tree rebuilds objtool,
// and with it every object). Modules are built in .build-KEY-PID-*. On every other path (an error,
// a panic unwinding through Build, the context ending) the temporary
// directory is removed, and its build log is first moved to
// logs/KEY.log, the path every build error names. Every command runs in
// its own process group, killed as a whole (SIGKILL) when the context
// ends and again once the command has exited, so no compiler outlives a
// cancelled Build; the group leader also dies with the thread that
// started it (Pdeathsig). What a SIGKILLed build leaves is removed by the
// next Build on the same cache: .build-kernel once it holds the lock (the
// lock dies with its holder), a module's directory once its process no
// longer exists. A Build of a kernel another Build is building waits for
// the lock and then finds the entry; two Builds of one module both build
// and the first rename wins. Entries are never modified after publishing
// and never evicted; remove the directory to reclaim space.
//
// # Dependencies
//
// The build needs make, gcc, flex, bison, bc, pahole, cpio, patch, tar,
// xz, and libelf's and OpenSSL's headers (Debian: build-essential flex
// bison bc libelf-dev libssl-dev dwarves cpio), and for Config.Debian the
// package linux-source-VERSION. Missing ones are installed with apt-get
// when running as root; otherwise Build fails with one line wrapping
// ErrMissingDeps that names them and their packages. A cache hit needs
// none of them (only the Debian source, to compute the key).
//
// Errors are one line and wrap exactly one of the sentinels of errors.go;
// match them with errors.Is.
package kbuild
