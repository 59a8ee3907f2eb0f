// Command ferric is Ferric's admin tool: schema migrations, the driver list,
// operator tokens, and `ferric dev`, which runs a whole local stack.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/ferric-metal/ferric/conductor/startup"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers/builtin"
	"github.com/ferric-metal/ferric/shared/buildinfo"
	"github.com/ferric-metal/ferric/shared/config"
	"github.com/ferric-metal/ferric/shared/token"
)

func main() {
	startup.Main("ferric", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr) })
}

const usage = `usage: ferric <command> [flags]

commands:
  migrate   apply pending database schema migrations
  drivers   list the drivers compiled in, and which are enabled
  token     mint an operator token: ferric token -role admin|member|reader -ttl 12h
  dev       run a local stack (private PostgreSQL, both APIs, a conductor); what make run does
  version   print the version

Run "ferric <command> -h" for a command's flags.`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "drivers":
		return listDrivers(rest, getenv, stdout, stderr)
	case "token":
		return mintToken(rest, getenv, stdout, stderr)
	case "dev":
		return dev(ctx, rest, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "ferric", buildinfo.Version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := config.Load(config.Admin, args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := startup.Logger(cfg, stderr)
	if err != nil {
		return err
	}
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, 2, cfg.DatabaseWait, log)
	if err != nil {
		return err
	}
	defer db.Close()
	before, err := store.PendingMigrations(ctx, db.DB)
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx, db.DB); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migration(s); the schema is current\n", before)
	return nil
}

func listDrivers(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := config.Load(config.Admin, args, getenv, stderr)
	if err != nil {
		return err
	}
	reg := builtin.Registry()
	enableErr := reg.Enable(cfg.EnabledDrivers)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DRIVER\tENABLED\tDESCRIPTION")
	names := reg.Names()
	sort.Strings(names)
	for _, n := range names {
		d, _ := reg.Available(n)
		enabled := "no"
		if reg.IsEnabled(n) {
			enabled = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n, enabled, d.Description())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return enableErr
}

func mintToken(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var role, subject string
	var ttl time.Duration
	cfg, _, err := config.Load(config.Admin, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&role, "role", "reader", "role the token grants: admin, member or reader")
		fs.DurationVar(&ttl, "ttl", 12*time.Hour, "how long the token is valid")
		fs.StringVar(&subject, "subject", "operator", "who the token is for; written to the audit log")
	})
	if err != nil {
		return err
	}
	if !token.ValidRole(role) {
		return fmt.Errorf("unknown role %q: want admin, member or reader", role)
	}
	if ttl <= 0 || ttl > 90*24*time.Hour {
		return fmt.Errorf("ttl %s out of range: want more than 0 and at most 90 days", ttl)
	}
	keys, err := token.LoadKeys(cfg.OperatorKeysFile)
	if err != nil {
		return fmt.Errorf("operator token keys (FERRIC_OPERATOR_KEYS_FILE): %w", err)
	}
	claims := token.Claims{Role: role}
	claims.Subject = subject
	tok, err := keys.Mint(claims, cfg.TokenIssuer, token.AudiencePublic, ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
