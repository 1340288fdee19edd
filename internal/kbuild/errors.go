package kbuild

import "errors"

// Sentinel errors; every error Build returns wraps exactly one of them
// (or the context's error when it ended). Match them with errors.Is.
var (
	// ErrBadInput: a source, patch, fragment or module directory that is
	// missing, unreadable or not what it should be; a bad Config.
	ErrBadInput = errors.New("bad input")
	// ErrMissingDeps: a build tool, header or source package is missing
	// and could not be installed (not root, no apt-get, apt-get failed).
	ErrMissingDeps = errors.New("missing build dependencies")
	// ErrPatch: a patch does not apply; the error names the patch file
	// and the first file and hunk that failed.
	ErrPatch = errors.New("patch does not apply")
	// ErrConfig: configuring failed, or a line of the config fragment did
	// not survive into the final .config (an unmet dependency).
	ErrConfig = errors.New("config")
	// ErrCompile: the build failed with a compiler or linker error; the
	// error quotes its first line (FILE:LINE:COL: error: ...).
	ErrCompile = errors.New("build failed")
	// ErrBuild: the build failed without a compiler error in the log
	// (make itself, a killed compiler, a full disk) or produced no image.
	ErrBuild = errors.New("build failed")
	// ErrCache: the cache directory cannot be created or read, or holds
	// an entry that is not one of ours.
	ErrCache = errors.New("kernel cache")
	// ErrNotBuilt (Lookup only): no build named that kernel, or its cache
	// entries were removed since.
	ErrNotBuilt = errors.New("kernel not built")
)
