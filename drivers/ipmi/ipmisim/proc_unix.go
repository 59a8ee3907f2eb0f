//go:build unix

package ipmisim

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts ipmi_sim in its own process group, so Stop also
// kills chassis scripts it started (a "hang" script may be sleeping).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
