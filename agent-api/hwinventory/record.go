package hwinventory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// commandsDir is where a recorded tree keeps the output of the commands
// Collect ran (ipmitool), next to sys, proc and dev.
const commandsDir = "commands"

// RecordTree runs Collect with opts and copies into dir everything it read:
// the files, the directories and the symbolic links (with their targets
// unchanged, so the copy keeps sysfs's structure), and the output of each
// command it ran under dir/commands. Collect with Root set to dir then sees
// the same machine, which is how this package's test trees are made, and
// what to ask of a machine the collector gets wrong. Interface addresses
// (Options.Addresses) are not files and are not recorded. dir must be
// absent or empty.
func RecordTree(ctx context.Context, opts Options, dir string) (*Machine, error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("recording a hardware tree: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("recording a hardware tree: %w", err)
	case len(entries) > 0:
		return nil, fmt.Errorf("recording a hardware tree: %s is not empty", dir)
	}
	rec := &recorder{dst: dir}
	run := opts.Run
	if run == nil {
		run = execRunner
	}
	opts.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
		out, err := run(ctx, name, args...)
		rec.command(name, args, out, err)
		return out, err
	}
	m, err := collect(ctx, opts, rec)
	if err != nil {
		return nil, err
	}
	if rec.err != nil {
		return nil, fmt.Errorf("recording a hardware tree in %s: %w", dir, rec.err)
	}
	return m, nil
}

// recorder copies what a tree reads into dst. Its methods do nothing on a
// nil recorder, so the tree calls them unconditionally. The first write
// error is kept and the rest skipped.
type recorder struct {
	dst string
	err error
}

func (r *recorder) target(rel string) string { return filepath.Join(r.dst, filepath.FromSlash(rel)) }

func (r *recorder) dir(rel string) {
	if r == nil || r.err != nil {
		return
	}
	r.err = os.MkdirAll(r.target(rel), 0o755)
}

func (r *recorder) link(rel, linkTarget string) {
	if r == nil || r.err != nil {
		return
	}
	name := r.target(rel)
	if _, err := os.Lstat(name); err == nil {
		return
	}
	if r.err = os.MkdirAll(filepath.Dir(name), 0o755); r.err == nil {
		r.err = os.Symlink(linkTarget, name)
	}
}

func (r *recorder) file(rel string, data []byte) {
	if r == nil || r.err != nil {
		return
	}
	name := r.target(rel)
	if r.err = os.MkdirAll(filepath.Dir(name), 0o755); r.err == nil {
		r.err = os.WriteFile(name, data, 0o644)
	}
}

// touch records that a file exists, content unknown: an empty file, unless
// its content was recorded.
func (r *recorder) touch(rel string) {
	if r == nil || r.err != nil {
		return
	}
	name := r.target(rel)
	if _, err := os.Lstat(name); err == nil {
		return
	}
	r.file(rel, nil)
}

// command keeps a command's output, or its error, under commands/ by the
// name the replaying runner looks for.
func (r *recorder) command(name string, args []string, out []byte, runErr error) {
	rel := commandFile(name, args)
	if runErr != nil {
		r.file(rel+".err", []byte(runErr.Error()+"\n"))
		return
	}
	r.file(rel+".out", out)
}

// commandFile names a recorded command: "commands/ipmitool lan print 1".
func commandFile(name string, args []string) string {
	return path.Join(commandsDir, strings.Join(append([]string{filepath.Base(name)}, args...), " "))
}

// TreeRunner runs commands from a recorded tree's commands directory: the
// output recorded for the same command line, or its recorded error, or an
// error for a command never recorded (as a BMC refuses a channel it does
// not have).
func TreeRunner(dir string) CommandRunner {
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		file := filepath.Join(dir, filepath.FromSlash(commandFile(name, args)))
		if out, err := os.ReadFile(file + ".out"); err == nil {
			return out, nil
		}
		if msg, err := os.ReadFile(file + ".err"); err == nil {
			return nil, fmt.Errorf("%s: %s", filepath.Base(name), strings.TrimSpace(string(msg)))
		}
		return nil, fmt.Errorf("%s %s: not recorded", filepath.Base(name), strings.Join(args, " "))
	}
}
