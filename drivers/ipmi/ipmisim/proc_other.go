//go:build !unix

package ipmisim

import "os/exec"

// ipmi_sim exists only on Unix; these keep the package compiling elsewhere.
func setProcessGroup(*exec.Cmd) {}

func killProcessGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
