package inventory

import "encoding/json"

// Properties derives the node properties Ironic's inspection sets:
// cpus, cpu_arch, memory_mb and local_gb (the root disk's size in GiB,
// minus one for partitioning, as Ironic does). Absent values are left out.
func Properties(data *Data) map[string]any {
	inv := &data.Inventory
	props := map[string]any{}
	if inv.CPU != nil {
		if inv.CPU.Count != nil && *inv.CPU.Count > 0 {
			props["cpus"] = *inv.CPU.Count
		}
		if a := inv.CPU.Architecture; a != nil && *a != "" {
			props["cpu_arch"] = *a
		}
	}
	if inv.Memory != nil {
		switch {
		case inv.Memory.PhysicalMB != nil && *inv.Memory.PhysicalMB > 0:
			props["memory_mb"] = *inv.Memory.PhysicalMB
		case inv.Memory.Total != nil && *inv.Memory.Total > 0:
			props["memory_mb"] = *inv.Memory.Total / (1 << 20)
		}
	}
	if size, ok := rootDiskSize(data); ok && size >= 1<<30 {
		props["local_gb"] = size/(1<<30) - 1
	}
	return props
}

// minRootDisk is the smallest disk IPA will deploy to.
const minRootDisk = 4 << 30

// rootDiskSize is the size of IPA's root_disk when it sent one, otherwise
// of the smallest disk of at least 4 GiB (IPA's default choice).
func rootDiskSize(data *Data) (int64, bool) {
	if rd, ok := data.PluginData["root_disk"].(map[string]any); ok {
		if n, ok := rd["size"].(json.Number); ok {
			if size, err := n.Int64(); err == nil && size > 0 {
				return size, true
			}
		}
	}
	var best int64
	for _, d := range data.Inventory.Disks {
		if d.Size != nil && *d.Size >= minRootDisk && (best == 0 || *d.Size < best) {
			best = *d.Size
		}
	}
	return best, best > 0
}
