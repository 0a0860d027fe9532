// A go-plugin host in Vault's containerised-plugin mode, minus the
// container: gRPC broker multiplexing on (PLUGIN_MULTIPLEX_GRPC), a socket
// directory and group (PLUGIN_UNIX_SOCKET_DIR, PLUGIN_UNIX_SOCKET_GROUP)
// and a RunnerFunc, as Vault's plugin runner configures go-plugin for
// `-oci_image` plugins; the runner starts a local process where Vault's
// starts a container that shares the socket directory.
// It mounts the plugin with the SDK's own backend client over an in-memory
// storage, writes and reads through it, and prints what it saw as JSON for
// tests/plugin_multiplexed_broker.rs to check. Test-only.
//
// Usage: muxhost PLUGIN_BINARY SOCKET_GID
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"github.com/hashicorp/vault/sdk/logical"
	sdkplugin "github.com/hashicorp/vault/sdk/plugin"
)

type socket struct {
	Path string `json:"path"`
	Mode string `json:"mode"`
	Gid  uint32 `json:"gid"`
}

type report struct {
	Sockets      []socket               `json:"sockets"`
	StoredKeys   []string               `json:"stored_keys"`
	Read         map[string]interface{} `json:"read"`
	StopSeconds  float64                `json:"stop_seconds"`
	PluginExited bool                   `json:"plugin_exited"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: muxhost PLUGIN_BINARY SOCKET_GID")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "muxhost:", err)
		os.Exit(1)
	}
}

func run(binary, group string) error {
	tempDir, err := os.MkdirTemp("", "muxhost")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tempDir)

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdkplugin.HandshakeConfig,
		VersionedPlugins: sdkplugin.PluginSet,
		RunnerFunc:       startLocally(binary),
		// Containerised plugins get no environment from Vault.
		SkipHostEnv:         true,
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:            true,
		GRPCBrokerMultiplex: true,
		UnixSocketConfig:    &plugin.UnixSocketConfig{Group: group, TempDir: tempDir},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "muxhost", Level: hclog.Debug, Output: os.Stderr,
		}),
	})
	defer client.Kill()

	protocol, err := client.Client()
	if err != nil {
		return fmt.Errorf("start the plugin: %w", err)
	}
	raw, err := protocol.Dispense("backend")
	if err != nil {
		return fmt.Errorf("dispense: %w", err)
	}
	backend := raw.(logical.Backend)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	storage := &logical.InmemStorage{}
	err = backend.Setup(ctx, &logical.BackendConfig{
		StorageView: storage,
		Logger:      hclog.NewNullLogger(),
		System: &logical.StaticSystemView{
			DefaultLeaseTTLVal: time.Hour,
			MaxLeaseTTLVal:     24 * time.Hour,
		},
		Config:      map[string]string{"plugin_name": "cloudrotate"},
		BackendUUID: "9c3b7c1e-5d43-4c6a-9d5e-muxhost00001",
	})
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}

	out := report{}
	// Stored through the brokered Storage connection, which in this mode
	// is a yamux stream the plugin opens after a knock.
	_, err = backend.HandleRequest(ctx, &logical.Request{
		Operation: logical.CreateOperation,
		Path:      "config/ali",
		Data: map[string]interface{}{
			"provider":          "alicloud",
			"region":            "cn-hangzhou",
			"access_key":        "LTAI-muxhost",
			"secret_key":        "muxhost-secret-never-returned",
			"endpoint":          "http://127.0.0.1:9",
			"verify_connection": false,
		},
	})
	if err != nil {
		return fmt.Errorf("write config/ali: %w", err)
	}
	if out.StoredKeys, err = storage.List(ctx, ""); err != nil {
		return err
	}
	read, err := backend.HandleRequest(ctx, &logical.Request{
		Operation: logical.ReadOperation,
		Path:      "config/ali",
	})
	if err != nil || read == nil {
		return fmt.Errorf("read config/ali: %v (response %v)", err, read)
	}
	out.Read = read.Data
	if out.Sockets, err = sockets(tempDir); err != nil {
		return err
	}

	backend.Cleanup(ctx)
	started := time.Now()
	client.Kill()
	out.StopSeconds = time.Since(started).Seconds()
	out.PluginExited = client.Exited()

	return json.NewEncoder(os.Stdout).Encode(out)
}

// sockets lists the Unix sockets under dir with their mode and group.
func sockets(dir string) ([]socket, error) {
	var found []socket
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || entry.Type()&fs.ModeSocket == 0 {
			return err
		}
		info, err := entry.Info()
		if err != nil {
			return err
		}
		found = append(found, socket{
			Path: path,
			Mode: fmt.Sprintf("%04o", info.Mode().Perm()),
			Gid:  info.Sys().(*syscall.Stat_t).Gid,
		})
		return nil
	})
	return found, err
}

// local runs the plugin as a child process, for go-plugin's RunnerFunc.
type local struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr io.ReadCloser
}

// startLocally runs binary where Vault would start the image's entrypoint;
// go-plugin's cmd carries only the environment.
func startLocally(binary string) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return func(_ hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
		cmd := exec.Command(binary)
		cmd.Env = spec.Env
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return nil, err
		}
		return &local{cmd: cmd, stdout: stdout, stderr: stderr}, nil
	}
}

func (l *local) Start(context.Context) error                      { return l.cmd.Start() }
func (l *local) Wait(context.Context) error                       { return l.cmd.Wait() }
func (l *local) Kill(context.Context) error                       { return l.cmd.Process.Kill() }
func (l *local) Stdout() io.ReadCloser                            { return l.stdout }
func (l *local) Stderr() io.ReadCloser                            { return l.stderr }
func (l *local) Name() string                                     { return l.cmd.Path }
func (l *local) ID() string                                       { return strconv.Itoa(l.cmd.Process.Pid) }
func (l *local) Diagnose(context.Context) string                  { return "" }
func (l *local) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (l *local) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }
