package cluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/version"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	clientgofeaturegate "k8s.io/client-go/features"
	"k8s.io/client-go/rest"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/featuregate"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"aiconform.dev/testcluster/internal/coscheduling"
)

// prepareFeatureGates applies, before any component registers its flags,
// the feature-gate default overrides that component commands would apply
// themselves. kube-controller-manager turns on the client-go WatchListClient
// gate (for its own process); in this single process it applies to all
// components, which the 1.34 apiserver supports.
func prepareFeatureGates() error {
	f := featuregate.Feature(clientgofeaturegate.WatchListClient)
	if !utilfeature.DefaultFeatureGate.Enabled(f) {
		return utilfeature.DefaultMutableFeatureGate.OverrideDefaultAtVersion(f, true, version.MustParse("1.34"))
	}
	return nil
}

func parseFlags(name string, nfs cliflag.NamedFlagSets, args []string) error {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	for _, f := range nfs.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s flags: %w", name, err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startEtcd starts an embedded single-member etcd on free loopback ports.
func startEtcd(dir, logFile string) (*embed.Etcd, string, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		cport, err := freePort()
		if err != nil {
			return nil, "", err
		}
		pport, err := freePort()
		if err != nil {
			return nil, "", err
		}
		curl, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", cport))
		purl, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", pport))
		cfg := embed.NewConfig()
		cfg.Name = "aiconform-testcluster"
		cfg.Dir = dir
		cfg.ListenClientUrls = []url.URL{*curl}
		cfg.AdvertiseClientUrls = []url.URL{*curl}
		cfg.ListenPeerUrls = []url.URL{*purl}
		cfg.AdvertisePeerUrls = []url.URL{*purl}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		cfg.Logger = "zap"
		cfg.LogLevel = "error"
		cfg.LogOutputs = []string{logFile}
		cfg.UnsafeNoFsync = true // throw-away data: trade durability for speed
		cfg.QuotaBackendBytes = 2 << 30
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err
			continue
		}
		select {
		case <-e.Server.ReadyNotify():
			return e, curl.String(), nil
		case err := <-e.Err():
			e.Close()
			lastErr = err
		case <-time.After(60 * time.Second):
			e.Close()
			return nil, "", fmt.Errorf("etcd did not become ready within 60s")
		}
	}
	return nil, "", fmt.Errorf("starting etcd: %w", lastErr)
}

// runAPIServer configures kube-apiserver like its command does and runs it
// in a goroutine; the returned channel yields its exit error (nil on clean
// shutdown) once ctx is cancelled.
func runAPIServer(ctx context.Context, args []string, listener net.Listener) (<-chan error, error) {
	s := apiserveroptions.NewServerRunOptions()
	if err := parseFlags("kube-apiserver", s.Flags(), args); err != nil {
		return nil, err
	}
	s.SecureServing.Listener = listener
	s.SecureServing.BindPort = listener.Addr().(*net.TCPAddr).Port
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	// kube-apiserver's own loopback clients should not log self-issued warnings.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, utilerrors.NewAggregate(errs)
	}
	config, err := apiserverapp.NewConfig(completed)
	if err != nil {
		return nil, err
	}
	cc, err := config.Complete()
	if err != nil {
		return nil, err
	}
	server, err := apiserverapp.CreateServerChain(cc)
	if err != nil {
		return nil, err
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return nil, err
	}
	errCh := make(chan error, 1)
	go func() { errCh <- prepared.Run(ctx) }()
	return errCh, nil
}

func runControllerManager(ctx context.Context, args []string) (<-chan error, error) {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, err
	}
	all, disabled, aliases := kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases()
	nfs := s.Flags(all, disabled, aliases)
	if err := parseFlags("kube-controller-manager", nfs, args); err != nil {
		return nil, err
	}
	s.ParsedFlags = &nfs
	c, err := s.Config(ctx, all, disabled, aliases)
	if err != nil {
		return nil, err
	}
	errCh := make(chan error, 1)
	go func() { errCh <- kcmapp.Run(ctx, c.Complete()) }()
	return errCh, nil
}

func runScheduler(ctx context.Context, args []string) (<-chan error, error) {
	opts := schedoptions.NewOptions()
	if err := parseFlags("kube-scheduler", *opts.Flags, args); err != nil {
		return nil, err
	}
	cc, sched, err := schedapp.Setup(ctx, opts, schedapp.WithPlugin(coscheduling.Name, coscheduling.New))
	if err != nil {
		return nil, err
	}
	errCh := make(chan error, 1)
	go func() { errCh <- schedapp.Run(ctx, cc, sched) }()
	return errCh, nil
}

// schedulerConfig renders the KubeSchedulerConfiguration. With gang=true the
// Coscheduling plugin is enabled on every extension point it implements
// (PreFilter, PostFilter, Reserve, Permit); DynamicResources and the other
// defaults stay enabled either way.
func schedulerConfig(kubeconfig string, gang bool) string {
	plugins := ""
	if gang {
		plugins = `
  plugins:
    multiPoint:
      enabled:
      - name: ` + coscheduling.Name
	}
	return fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 200
  burst: 400
leaderElection:
  leaderElect: false
podInitialBackoffSeconds: 1
podMaxBackoffSeconds: 10
profiles:
- schedulerName: default-scheduler%s
`, filepath.ToSlash(kubeconfig), plugins)
}
