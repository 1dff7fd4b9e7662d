package podruntime

// Startup and readiness probes of process-runtime containers, run like the
// kubelet's prober so that a pod is Ready (and listed in EndpointSlices, and
// its Deployment available) only once its own probe says so.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// defaultProbePeriodCap caps periodSeconds: the kubelet's default of 10 s
// would make every component wait up to 10 s for readiness. Probing more
// often changes when a result is noticed, not what it is.
const defaultProbePeriodCap = 2 * time.Second

// probeBodyLimit is how much of an HTTP probe's response body is read, as
// the kubelet reads at most 10 KiB.
const probeBodyLimit = 10 << 10

// probeRedirects is how many same-host redirects an HTTP probe follows.
const probeRedirects = 10

// probeGates records which probes gate a container's started and ready
// flags, for containers run as processes (set when the pod is created).
func probeGates(s *ctrState, c *corev1.Container) {
	s.readyGated = s.mapped && c.ReadinessProbe != nil
	s.startGated = s.mapped && c.StartupProbe != nil
}

// startProbes runs the container's startup and readiness probes while its
// process runs; stop ends them and resets the results, as a kubelet does
// for a new container instance.
func (rt *Runtime) startProbes(ctx context.Context, c *corev1.Container, pr *podRun, started time.Time) (stop func()) {
	if c.ReadinessProbe == nil && c.StartupProbe == nil {
		return func() {}
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rt.runProbes(pctx, c, pr, started)
	}()
	return func() {
		cancel()
		<-done
		pr.update(c.Name, func(s *ctrState) { s.ready, s.startupDone = false, false })
	}
}

// runProbes runs the startup probe until it succeeds, then the readiness
// probe until ctx ends, publishing every change of result.
func (rt *Runtime) runProbes(ctx context.Context, c *corev1.Container, pr *podRun, started time.Time) {
	if p := c.StartupProbe; p != nil {
		ok := rt.probeLoop(ctx, p, c, pr, started, "Startup", func(result bool) bool {
			return !result // stop at the first success
		})
		if !ok {
			return
		}
		pr.update(c.Name, func(s *ctrState) { s.startupDone = true })
		rt.notify(pr.key)
		// Readiness delays count from the container's start, like the
		// kubelet's; by now they may have passed.
	}
	if p := c.ReadinessProbe; p != nil {
		rt.probeLoop(ctx, p, c, pr, started, "Readiness", func(result bool) bool {
			pr.update(c.Name, func(s *ctrState) { s.ready = result })
			rt.notify(pr.key)
			return true
		})
	}
}

// probeLoop probes every period after the initial delay (counted from
// started) and calls onChange whenever the thresholded result changes; it
// returns true when onChange asked to stop, false when ctx ended.
func (rt *Runtime) probeLoop(ctx context.Context, p *corev1.Probe, c *corev1.Container, pr *podRun, started time.Time, kind string, onChange func(bool) bool) bool {
	if !sleepCtx(ctx, time.Until(started.Add(time.Duration(p.InitialDelaySeconds)*time.Second))) {
		return false
	}
	th := probeThresholds{success: max(1, p.SuccessThreshold), failure: p.FailureThreshold}
	if th.failure <= 0 {
		th.failure = 3 // the API default
	}
	ticker := time.NewTicker(rt.probePeriod(p))
	defer ticker.Stop()
	for {
		err := rt.probeOnce(ctx, p, c, pr.podIP)
		if ctx.Err() != nil {
			return false
		}
		pr.update(c.Name, func(s *ctrState) {
			s.probeRuns++
			s.probeErr = ""
			if err != nil {
				s.probeErr = err.Error()
			}
		})
		if err != nil {
			klog.V(4).InfoS("sim runtime: probe failed", "pod", pr.key, "container", c.Name, "probe", kind, "err", err)
		}
		if th.observe(err == nil) && !onChange(th.result) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ticker.C:
		}
	}
}

// probePeriod is the probe's period (default 10 s), capped to speed up the
// cluster (see defaultProbePeriodCap).
func (rt *Runtime) probePeriod(p *corev1.Probe) time.Duration {
	period := 10 * time.Second
	if p.PeriodSeconds > 0 {
		period = time.Duration(p.PeriodSeconds) * time.Second
	}
	limit := rt.probePeriodCap
	if limit <= 0 {
		limit = defaultProbePeriodCap
	}
	return min(period, limit)
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// probeThresholds turns single probe outcomes into the result the kubelet
// reports: it flips only after successThreshold consecutive successes or
// failureThreshold consecutive failures, and starts as failure.
type probeThresholds struct {
	success, failure int32
	result           bool  // the reported result
	last             bool  // the latest outcome
	run              int32 // how many outcomes in a row equal last
}

// observe records one outcome; true when the reported result changed.
func (t *probeThresholds) observe(ok bool) bool {
	if t.run > 0 && ok == t.last {
		t.run++
	} else {
		t.last, t.run = ok, 1
	}
	need := t.failure
	if ok {
		need = t.success
	}
	if t.run < need || ok == t.result {
		return false
	}
	t.result = ok
	return true
}

// probeOnce runs one probe with its timeout (default 1 s); nil = success.
func (rt *Runtime) probeOnce(ctx context.Context, p *corev1.Probe, c *corev1.Container, podIP string) error {
	timeout := time.Second
	if p.TimeoutSeconds > 0 {
		timeout = time.Duration(p.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		return rt.probeHTTP(ctx, p.HTTPGet, c, podIP)
	case p.TCPSocket != nil:
		return probeTCP(ctx, p.TCPSocket, c, podIP)
	case p.GRPC != nil:
		return rt.probeGRPC(ctx, p.GRPC, podIP)
	case p.Exec != nil:
		// No command runs inside a process container: an exec probe
		// succeeds while the process runs.
		return nil
	}
	return errors.New("probe has no handler")
}

// probePort resolves a probe port given by number or by container port name.
func probePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	n := port.IntValue()
	if port.Type == intstr.String {
		n = 0
		for _, cp := range c.Ports {
			if cp.Name == port.StrVal {
				n = int(cp.ContainerPort)
			}
		}
		if n == 0 {
			return 0, fmt.Errorf("container %s has no port named %q", c.Name, port.StrVal)
		}
	}
	if n <= 0 || n > 65535 {
		return 0, fmt.Errorf("invalid probe port %d", n)
	}
	return n, nil
}

// probeUserAgent is the User-Agent the kubelet of the simulated nodes' version sends.
func (rt *Runtime) probeUserAgent() string {
	v := "kube-probe"
	parts := strings.SplitN(strings.TrimPrefix(rt.version, "v"), ".", 3)
	if len(parts) >= 2 {
		v += "/" + parts[0] + "." + parts[1]
	}
	return v
}

// probeHTTPClient is the client of HTTP probes: no proxy, no keep-alive,
// certificates not verified (as the kubelet's), same-host redirects only.
var probeHTTPClient = &http.Client{
	Transport: &http.Transport{
		Proxy:              nil,
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives:  true,
		DisableCompression: true,
	},
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Hostname() != via[0].URL.Hostname() {
			return http.ErrUseLastResponse // the kubelet reports success
		}
		if len(via) >= probeRedirects {
			return fmt.Errorf("stopped after %d redirects", probeRedirects)
		}
		return nil
	},
}

// probeHTTP GETs the probe URL (host = pod IP unless set); success is a
// status of 200-399.
func (rt *Runtime) probeHTTP(ctx context.Context, g *corev1.HTTPGetAction, c *corev1.Container, podIP string) error {
	port, err := probePort(g.Port, c)
	if err != nil {
		return err
	}
	host := g.Host
	if host == "" {
		host = podIP
	}
	u, err := url.Parse(g.Path)
	if err != nil {
		u = &url.URL{Path: g.Path}
	}
	u.Scheme = strings.ToLower(string(g.Scheme))
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("probe request %s: %w", u, err)
	}
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
		} else {
			req.Header.Add(h.Name, h.Value)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", rt.probeUserAgent())
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "*/*")
	}
	resp, err := probeHTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, probeBodyLimit))
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest {
		return fmt.Errorf("HTTP probe failed with statuscode: %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// probeTCP succeeds when a connection to the port opens.
func probeTCP(ctx context.Context, s *corev1.TCPSocketAction, c *corev1.Container, podIP string) error {
	port, err := probePort(s.Port, c)
	if err != nil {
		return err
	}
	host := s.Host
	if host == "" {
		host = podIP
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return conn.Close()
}

// probeGRPC calls grpc.health.v1.Health/Check on the pod IP (plaintext, as
// the kubelet does); success is SERVING.
func (rt *Runtime) probeGRPC(ctx context.Context, g *corev1.GRPCAction, podIP string) error {
	addr := net.JoinHostPort(podIP, strconv.Itoa(int(g.Port)))
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent(rt.probeUserAgent()))
	if err != nil {
		return fmt.Errorf("gRPC probe of %s: %w", addr, err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: ptr.Deref(g.Service, "")})
	if err != nil {
		return fmt.Errorf("gRPC probe of %s: %w", addr, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC probe of %s: status %s", addr, resp.GetStatus())
	}
	return nil
}
