package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/v6matrix/v6matrix/internal/lab"
)

// cmdLab dispatches `v6matrix lab up|down|status|exec|serve|scenario|domains`.
func cmdLab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"up": labUp, "down": labDown, "status": labStatus, "exec": labExec,
		"serve": labServe, "scenario": labScenario, "domains": labDomains,
	}
	if len(args) == 0 || subs[args[0]] == nil {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			labUsage(stdout)
			return nil
		}
		labUsage(stderr)
		return usagef("want a subcommand: up, down, status, exec, scenario or domains")
	}
	return subs[args[0]](ctx, args[1:], stdout, stderr)
}

func labUsage(w io.Writer) {
	fmt.Fprint(w, `usage: v6matrix lab <subcommand> [flags]

  up        build the lab's namespaces and links and start its servers (needs root)
  down      remove every namespace, link and process of the lab (safe after a crash)
  status    show the lab's namespaces, addresses, daemon and servers
  exec      run a command in the vantage namespace: v6matrix lab exec -- dig www.alpha.uk
  scenario  print the default scenario (YAML) to start your own from
  domains   print the scenario's domain list (rank,domain) for a crawl

Every subcommand takes --prefix (default "v6m-"). See docs/LAB.md.
`)
}

// labFlags are the flags every lab subcommand shares.
type labFlags struct {
	prefix, scenario, state string
}

func (f *labFlags) parse(name, synopsis string, args []string, help io.Writer, withScenario bool) ([]string, error) {
	fs := newFlagSet("lab "+name, synopsis, help)
	fs.StringVar(&f.prefix, "prefix", lab.DefaultPrefix, "name prefix of the lab's namespaces")
	fs.StringVar(&f.state, "state", "", "state directory (default /run/<prefix>lab)")
	if withScenario {
		fs.StringVar(&f.scenario, "scenario", "", "scenario file (default: the built-in one)")
	}
	if err := parseFlags(fs, args, nil); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

func (f *labFlags) config(stderr io.Writer) (lab.Config, error) {
	cfg := lab.Config{Prefix: f.prefix, StateDir: f.state,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if f.scenario != "" {
		s, err := lab.LoadScenario(f.scenario)
		if err != nil {
			return cfg, err
		}
		cfg.Scenario = s
	}
	return cfg, nil
}

func labUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f labFlags
	if _, err := f.parse("up", "[--prefix P] [--scenario FILE]", args, stdout, true); err != nil {
		return err
	}
	cfg, err := f.config(stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	l, err := lab.Build(ctx, cfg)
	if err != nil {
		return err
	}
	// The daemon reads the scenario from the state directory, so that it serves exactly
	// what was built even if the file changes.
	text := lab.DefaultScenarioYAML()
	if f.scenario != "" {
		if text, err = os.ReadFile(f.scenario); err != nil {
			return errors.Join(err, l.Down(context.Background()))
		}
	}
	scenarioCopy := filepath.Join(l.StateDir(), "scenario.yaml")
	if err := os.WriteFile(scenarioCopy, text, 0o644); err != nil {
		return errors.Join(fmt.Errorf("save scenario: %w", err), l.Down(context.Background()))
	}
	exe, err := os.Executable()
	if err != nil {
		return errors.Join(fmt.Errorf("find own executable: %w", err), l.Down(context.Background()))
	}
	argv := []string{exe, "lab", "serve", "--prefix", l.Prefix(), "--state", l.StateDir(), "--scenario", scenarioCopy}
	pid, err := l.StartDaemon(ctx, argv)
	if err != nil {
		return errors.Join(err, l.Down(context.Background()))
	}
	fmt.Fprintf(stdout, "lab %s up in %v: %d namespaces, servers in daemon pid %d (log %s)\n",
		l.Prefix(), time.Since(start).Round(time.Millisecond), len(l.Scenario().Nodes), pid,
		filepath.Join(l.StateDir(), "daemon.log"))
	fmt.Fprintf(stdout, "vantage namespace %s, resolver %s; try: v6matrix lab exec -- dig www.alpha.uk AAAA\n",
		l.VantageNS(), l.ResolverAddr())
	return nil
}

func labServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f labFlags
	if _, err := f.parse("serve", "--prefix P --scenario FILE (started by lab up)", args, stdout, true); err != nil {
		return err
	}
	cfg, err := f.config(stderr)
	if err != nil {
		return err
	}
	l, err := lab.Attach(cfg)
	if err != nil {
		return err
	}
	if err := l.StartServers(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	slog.New(slog.NewTextHandler(stderr, nil)).Info("lab daemon stopping", "prefix", l.Prefix())
	return l.StopServers()
}

func labDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f labFlags
	if _, err := f.parse("down", "[--prefix P]", args, stdout, false); err != nil {
		return err
	}
	if err := lab.Down(ctx, f.prefix, f.state); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "lab %s down\n", f.prefix)
	return nil
}

func labStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f labFlags
	if _, err := f.parse("status", "[--prefix P]", args, stdout, false); err != nil {
		return err
	}
	st, err := lab.ReadStatus(f.prefix, f.state)
	if err != nil {
		return err
	}
	if len(st.Namespaces) == 0 {
		fmt.Fprintf(stdout, "lab %s is down (no namespace)\n", f.prefix)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tINTERFACE\tMTU\tADDRESSES")
	for _, ns := range st.Namespaces {
		for _, ifc := range ns.Interfaces {
			addrs := make([]string, len(ifc.Addrs))
			for i, a := range ifc.Addrs {
				addrs[i] = a.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", ns.Name, ifc.Name, ifc.MTU, strings.Join(addrs, " "))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.DaemonPID == 0 {
		fmt.Fprintln(stdout, "\nservers: no daemon running (lab down, then lab up, restarts it)")
		return nil
	}
	fmt.Fprintf(stdout, "\nservers: daemon pid %d, %d listeners\n", st.DaemonPID, len(st.Listeners))
	for _, l := range st.Listeners {
		fmt.Fprintf(stdout, "  %s\n", l)
	}
	return nil
}

func labExec(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f labFlags
	rest, err := f.parse("exec", "[--prefix P] -- COMMAND [ARGS...]", args, stdout, false)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usagef("lab exec: want a command after --")
	}
	cfg, err := f.config(io.Discard)
	if err != nil {
		return err
	}
	l, err := lab.Attach(cfg)
	if err != nil {
		return err
	}
	code, err := l.Exec(ctx, rest, os.Stdin, stdout, stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		// The command's own status is the answer: pass it on unchanged.
		os.Exit(code)
	}
	return nil
}

func labScenario(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("lab scenario", "", stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, err := stdout.Write(lab.DefaultScenarioYAML())
	return err
}

func labDomains(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("lab domains", "[--scenario FILE]", stdout)
	file := fs.String("scenario", "", "scenario file (default: the built-in one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := lab.DefaultScenario()
	if *file != "" {
		var err error
		if s, err = lab.LoadScenario(*file); err != nil {
			return err
		}
	}
	_, err := stdout.Write(s.DomainList())
	return err
}
