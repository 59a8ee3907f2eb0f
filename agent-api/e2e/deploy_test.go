package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
)

const imageSize = 24 << 20

// TestDeploy takes machines through enroll, manage, provide (cleaning by
// the agent), deploy and undeploy on one stack, each machine with its own
// Redfish BMC and agent.
func TestDeploy(t *testing.T) {
	s := newStack(t, stackOptions{})
	im := newImages(t)
	raw := rawImage(t, imageSize)

	// Every format, each detected by its content: the disk format the
	// node names is left out or wrong on purpose for two of them.
	for i, tc := range []struct{ format, claimed string }{
		{"raw", "raw"}, {"gzip", ""}, {"zstd", "raw"}, {"qcow2", "qcow2"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			m := newMachine(t, 10+i)
			m.runAgent(t, s)
			id := m.enroll(t, s, "deploy-"+tc.format)
			makeAvailable(t, s, id)
			url, sum := im.publish(t, "image-"+tc.format, raw, tc.format)
			info := map[string]any{"image_source": url, "image_checksum": "sha256:" + sum}
			if tc.claimed != "" {
				info["image_disk_format"] = tc.claimed
			}
			setInstance(t, s, id, info)
			provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
			waitState(t, s, id, "active", 2*time.Minute)
			if got := diskPrefix(t, m.disk, len(raw)); !bytes.Equal(got, raw) {
				t.Fatalf("the disk does not hold the image byte for byte (first difference at %d)", firstDiff(got, raw))
			}
			if b := m.sim.Boot("1"); b.Target != "Hdd" || b.Enabled != "Continuous" {
				t.Errorf("after the deploy the BMC boots %s (%s), want Hdd, persistently", b.Target, b.Enabled)
			}

			if tc.format != "raw" {
				return
			}
			// Undeploy: cleaning by the agent, then available, the
			// image's partition table gone.
			provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted})
			n := waitState(t, s, id, "available", 2*time.Minute)
			if len(n.InstanceInfo) != 0 {
				t.Errorf("instance_info survived the undeploy: %v", n.InstanceInfo)
			}
			if mbr := diskPrefix(t, m.disk, 1<<20); !bytes.Equal(mbr, make([]byte, 1<<20)) {
				t.Errorf("after cleaning, the disk's first MiB is not erased")
			}
		})
	}

	t.Run("checksum mismatch", func(t *testing.T) {
		t.Parallel()
		m, id, _ := availableMachine(t, s, 20, "bad-checksum")
		url, _ := im.publish(t, "image-bad", raw, "raw")
		setInstance(t, s, id, map[string]any{"image_source": url,
			"image_checksum": "sha256:" + strings.Repeat("0", 64)})
		provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
		n := waitState(t, s, id, "deploy failed", 2*time.Minute)
		if !strings.Contains(n.LastError, "deploy failed") || !strings.Contains(strings.ToLower(n.LastError), "checksum") {
			t.Errorf("last_error does not say the checksum was wrong: %q", n.LastError)
		}
		if got := diskPrefix(t, m.disk, len(raw)); !bytes.Equal(got, make([]byte, len(raw))) {
			t.Errorf("the unverified image was left on the disk (non-zero byte at %d)", firstDiff(got, make([]byte, len(raw))))
		}
	})

	t.Run("root device hints match nothing", func(t *testing.T) {
		t.Parallel()
		m := newMachine(t, 21)
		m.runAgent(t, s)
		id := m.enroll(t, s, "no-root-device")
		if _, err := nodes.Update(context.Background(), s.client, id, nodes.UpdateOpts{nodes.UpdateOperation{
			Op: nodes.AddOp, Path: "/properties/root_device", Value: map[string]any{"size": ">= 100000"}}}).Extract(); err != nil {
			t.Fatal(err)
		}
		makeAvailable(t, s, id)
		url, sum := im.publish(t, "image-hints", raw, "raw")
		deployImage(t, s, id, url, "sha256:"+sum)
		n := waitState(t, s, id, "deploy failed", 2*time.Minute)
		if !strings.Contains(n.LastError, "root device") || !strings.Contains(n.LastError, ">= 100000") {
			t.Errorf("last_error does not name the hints: %q", n.LastError)
		}
	})

	t.Run("configdrive", func(t *testing.T) {
		t.Parallel()
		m, id, _ := availableMachine(t, s, 22, "configdrive")
		url, sum := im.publish(t, "image-cd", raw, "raw")
		setInstance(t, s, id, map[string]any{"image_source": url, "image_checksum": "sha256:" + sum})
		provision(t, s, id, nodes.ProvisionStateOpts{Target: nodes.TargetActive, ConfigDrive: nodes.ConfigDrive{
			MetaData: map[string]any{"uuid": id, "hostname": "configdrive-e2e"},
			UserData: "#cloud-config\nhostname: configdrive-e2e\n",
		}})
		waitState(t, s, id, "active", 2*time.Minute)
		checkConfigDrive(t, m.disk, "configdrive-e2e")
		if got := diskPrefix(t, m.disk, len(raw)); !bytes.Equal(got[512:], raw[512:]) {
			t.Errorf("the image's bytes beyond the partition table changed (first difference at %d)", 512+firstDiff(got[512:], raw[512:]))
		}
	})

	t.Run("two deploys at once", func(t *testing.T) {
		t.Parallel()
		_, id, _ := availableMachine(t, s, 23, "two-deploys")
		url, sum := im.publish(t, "image-two", raw, "raw")
		setInstance(t, s, id, map[string]any{"image_source": url, "image_checksum": "sha256:" + sum})
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := nodes.ChangeProvisionState(context.Background(), s.client, id, nodes.ProvisionStateOpts{Target: nodes.TargetActive}).ExtractErr()
				codes[i] = statusCode(err)
			}()
		}
		wg.Wait()
		accepted := 0
		for _, c := range codes {
			switch c {
			case http.StatusAccepted:
				accepted++
			case http.StatusConflict, http.StatusBadRequest:
			default:
				t.Errorf("a deploy answered %d", c)
			}
		}
		if accepted != 1 {
			t.Fatalf("%d of two simultaneous deploys were accepted (codes %v), want exactly one", accepted, codes)
		}
		waitState(t, s, id, "active", 2*time.Minute)
	})

	t.Run("clean leaves no signature", func(t *testing.T) {
		t.Parallel()
		m := newMachine(t, 24)
		mkfs := lookTool(t, "mkfs.ext4", "e2fsprogs")
		blkid := lookTool(t, "blkid", "util-linux")
		if out, err := exec.Command(mkfs, "-F", "-q", m.disk, "64M").CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v\n%s", err, out)
		}
		if out, err := exec.Command(blkid, "-p", m.disk).CombinedOutput(); err != nil || !strings.Contains(string(out), "ext4") {
			t.Fatalf("blkid does not see the filesystem written: %v %s", err, out)
		}
		m.runAgent(t, s)
		id := m.enroll(t, s, "clean")
		makeAvailable(t, s, id)
		out, err := exec.Command(blkid, "-p", m.disk).CombinedOutput()
		if code := exitCode(err); code != 2 { // blkid: 2 means nothing found
			t.Errorf("after cleaning, blkid -p exits %d: %s", code, out)
		}
	})
}

// checkConfigDrive finds the configdrive partition the agent added to the
// MBR at the end of the disk and checks that it is an ISO9660 filesystem
// labelled config-2 holding the user data.
func checkConfigDrive(t *testing.T, disk, hostname string) {
	t.Helper()
	blkid := lookTool(t, "blkid", "util-linux")
	out, err := exec.Command(blkid, "-p", "-o", "export", "-O", fmt.Sprint(lastPartitionOffset(t, disk)), disk).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "LABEL=config-2") || !strings.Contains(string(out), "TYPE=iso9660") {
		t.Fatalf("no ISO9660 filesystem labelled config-2 in the last partition: %v\n%s", err, out)
	}
	isoinfo := lookTool(t, "isoinfo", "genisoimage")
	iso := extractLastPartition(t, disk)
	data, err := exec.Command(isoinfo, "-R", "-i", iso, "-x", "/openstack/latest/user_data").Output()
	if err != nil || !strings.Contains(string(data), "hostname: "+hostname) {
		t.Errorf("the configdrive's user_data is not the one sent: %v %q", err, data)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func statusCode(err error) int {
	if err == nil {
		return http.StatusAccepted
	}
	var unexpected gophercloud.ErrUnexpectedResponseCode
	if errorsAs(err, &unexpected) {
		return unexpected.Actual
	}
	return -1
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

var _ = os.Getenv
