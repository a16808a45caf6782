package gitserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSH is the server's SSH endpoint and the keys a client needs for it,
// in the forms a Flux secret holds them.
type SSH struct {
	// URL is the repository's clone URL, ssh://git@127.0.0.1:<port>/repo.git.
	URL string
	// Identity is the one client private key the server accepts, in
	// OpenSSH PEM form.
	Identity []byte
	// KnownHosts is a known_hosts line with the server's host key.
	KnownHosts []byte
}

// ServeSSH serves the repository over SSH as well, until the test ends:
// public-key auth for user git with SSH.Identity only, and only
// git-upload-pack of the repository (and git-receive-pack after
// AllowPush), run with the system git. Both keys are new on every call,
// so no test can trust another's server.
func (s *Server) ServeSSH() SSH {
	s.t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		s.t.Fatalf("generate ssh host key: %v", err)
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		s.t.Fatalf("ssh host key: %v", err)
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		s.t.Fatalf("generate ssh client key: %v", err)
	}
	clientKey, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		s.t.Fatalf("ssh client key: %v", err)
	}
	identity, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		s.t.Fatalf("marshal ssh client key: %v", err)
	}
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if meta.User() != "git" || !bytes.Equal(key.Marshal(), clientKey.Marshal()) {
				return nil, fmt.Errorf("public key %s for user %q is not accepted", ssh.FingerprintSHA256(key), meta.User())
			}
			return nil, nil
		},
	}
	config.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatalf("listen for ssh: %v", err)
	}
	// t.Context is done before the cleanups run, so upload-packs still
	// running are killed by the time close waits for them.
	x := &sshServer{s: s, config: config, ln: ln, ctx: s.t.Context(), conns: map[net.Conn]struct{}{}}
	s.t.Cleanup(x.close)
	x.wg.Go(x.serve)
	addr := ln.Addr().String()
	return SSH{
		URL:        "ssh://git@" + addr + "/repo.git",
		Identity:   pem.EncodeToMemory(identity),
		KnownHosts: []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostKey.PublicKey()) + "\n"),
	}
}

// sshServer is one ServeSSH listener with what it must close and wait
// for when the test ends.
type sshServer struct {
	s      *Server
	config *ssh.ServerConfig
	ln     net.Listener
	// ctx is done when the test ends; it kills running upload-packs.
	ctx context.Context
	// wg counts every goroutine the server starts, so that none outlives
	// the test and logs to, or reads the files of, a finished one.
	wg sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// close stops accepting, drops every connection, which ends their
// sessions, and waits for the goroutines to return.
func (x *sshServer) close() {
	_ = x.ln.Close()
	x.mu.Lock()
	x.closed = true
	for c := range x.conns {
		_ = c.Close()
	}
	x.mu.Unlock()
	x.wg.Wait()
}

func (x *sshServer) serve() {
	for {
		c, err := x.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				x.s.t.Errorf("accept ssh connection: %v", err)
			}
			return
		}
		x.mu.Lock()
		closed := x.closed
		if !closed {
			x.conns[c] = struct{}{}
		}
		x.mu.Unlock()
		if closed {
			// Accepted just as the test ended: close has already closed
			// the tracked connections and would miss this one.
			_ = c.Close()
			return
		}
		x.wg.Go(func() { x.handle(c) })
	}
}

// handle runs one connection: the handshake, then a session per channel.
func (x *sshServer) handle(c net.Conn) {
	defer func() {
		x.mu.Lock()
		delete(x.conns, c)
		x.mu.Unlock()
		_ = c.Close()
	}()
	conn, chans, reqs, err := ssh.NewServerConn(c, x.config)
	if err != nil {
		// A refused key or host key is the client's failure to report;
		// the tests that cause one expect it.
		return
	}
	defer func() { _ = conn.Close() }()
	x.wg.Go(func() { ssh.DiscardRequests(reqs) })
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels are served")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		x.wg.Go(func() { x.session(ch, chReqs) })
	}
}

// session answers a channel's requests: the first exec runs, every other
// request (env, pty-req, shell, a second exec) is refused. It reads the
// requests until the channel closes so that the connection never stalls
// on an unread one.
func (x *sshServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	started := false
	for req := range reqs {
		var payload struct{ Command string }
		if req.Type != "exec" || started || ssh.Unmarshal(req.Payload, &payload) != nil {
			_ = req.Reply(false, nil)
			continue
		}
		started = true
		_ = req.Reply(true, nil)
		x.wg.Go(func() {
			status := x.run(ch, payload.Command)
			// As OpenSSH does: end of output, the status, then close.
			_ = ch.CloseWrite()
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			_ = ch.Close()
		})
	}
}

// run runs an exec request's command on the channel and returns its exit
// status.
func (x *sshServer) run(ch ssh.Channel, command string) uint32 {
	service, repo, err := x.s.sshRepo(command)
	if err != nil {
		_, _ = fmt.Fprintln(ch.Stderr(), err)
		return 1
	}
	cmd := exec.CommandContext(x.ctx, service, repo)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null")
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	// upload-pack's child pack-objects inherits stdout: when the test's
	// end kills upload-pack, Wait must not wait for the child too.
	cmd.WaitDelay = time.Second
	// A pipe of our own rather than cmd.Stdin = ch: Wait would wait for
	// that copy, which ends only when the client closes its side, and a
	// client may wait for the exit status before it does.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		_, _ = fmt.Fprintf(ch.Stderr(), "gitserver: %s stdin: %v\n", service, err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		_, _ = fmt.Fprintf(ch.Stderr(), "gitserver: start %s: %v\n", service, err)
		return 1
	}
	x.wg.Go(func() {
		if service == "git-upload-pack" {
			x.copyInput(stdin, ch)
		} else {
			// A push moves objects the other way: not a fetch.
			_, _ = io.Copy(stdin, ch)
		}
		_ = stdin.Close()
	})
	if err := cmd.Wait(); err != nil {
		if exit, ok := errors.AsType[*exec.ExitError](err); ok && exit.ExitCode() > 0 {
			return uint32(exit.ExitCode())
		}
		return 1
	}
	return 0
}

// copyInput feeds the client's input to upload-pack and counts a fetch
// when it opens with wants rather than a flush. Over SSH an ls-remote
// runs upload-pack too, reads the advertisement and sends a flush; it
// moves no objects, like the info/refs request over HTTP that New does
// not count either.
func (x *sshServer) copyInput(dst io.Writer, src io.Reader) {
	head := make([]byte, 4)
	n, _ := io.ReadFull(src, head)
	if n == len(head) && string(head) != "0000" {
		x.s.mu.Lock()
		x.s.fetches++
		x.s.mu.Unlock()
	}
	if _, err := dst.Write(head[:n]); err != nil {
		return
	}
	_, _ = io.Copy(dst, src)
}

// sshRepo maps an exec request to the service to run and the bare
// repository: git-upload-pack (or git-receive-pack after AllowPush) of
// /repo.git or repo.git, its path quoted (as go-git and git send it) or
// not. The error is the message for the client.
func (s *Server) sshRepo(command string) (service, repo string, err error) {
	name, path, _ := strings.Cut(command, " ")
	if name != "git-upload-pack" && (name != "git-receive-pack" || !s.push.Load()) {
		return "", "", fmt.Errorf("gitserver: only git-upload-pack is served, not %q", command)
	}
	if len(path) >= 2 && path[0] == '\'' && path[len(path)-1] == '\'' {
		path = path[1 : len(path)-1]
	}
	if path != "/repo.git" && path != "repo.git" {
		// git's own words, which clients read as a missing repository.
		return "", "", fmt.Errorf("fatal: '%s' does not appear to be a git repository", path)
	}
	return name, filepath.Join(s.root, "repo.git"), nil
}
