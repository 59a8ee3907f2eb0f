package config

import (
	"fmt"
	"strings"
)

// Markdown renders the settings table as docs/configuration.md; a test keeps
// the committed file equal to it.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Configuration\n\n")
	b.WriteString("Every Ferric program reads its settings from `FERRIC_*` environment variables; a\n")
	b.WriteString("command-line flag of the same name (`-public-listen` for `FERRIC_PUBLIC_LISTEN`) overrides\n")
	b.WriteString("the variable. This file is generated from `shared/config/config.go`\n")
	b.WriteString("(`go test ./shared/config -update`); edit the table there, not here.\n\n")
	b.WriteString("| variable | flag | default | programs | meaning |\n|---|---|---|---|---|\n")
	for _, s := range Settings {
		def := s.Default
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(&b, "| `%s` | `-%s` | `%s` | %s | %s |\n", s.Env(), s.Flag, def,
			strings.Join(s.Programs, ", "), strings.ReplaceAll(s.Usage, "|", "\\|"))
	}
	return b.String()
}
