// Package buildinfo carries the version stamped into the binaries by the
// Makefile (-ldflags -X).
package buildinfo

// Version is the git description of the build, or "dev".
var Version = "dev"
