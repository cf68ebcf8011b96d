// Command cadvisor is PRISM's container-metrics exporter: cAdvisor's own manager, Prometheus collector and
// Docker container support (github.com/google/cadvisor/lib and github.com/google/cadvisor at the catalog's
// version), behind this short main, because no version of cAdvisor's cmd/ is served by the Go module proxy
// here. It serves the upstream image's contract: port 8080, /metrics, /healthz, klog's -logtostderr.
//
// Beyond cAdvisor's container_* series it exports, from the Docker engine's own records, what cAdvisor's
// library does not: restarts (Docker's RestartCount) and OOM kills (Docker's State.OOMKilled and its "oom"
// events). The library never fills container_oom_events_total (its kernel-log OOM watcher is not part of
// lib), and under nested cgroup v1 the kernel log is not this host's to read, so Docker is the one source;
// prism_container_oom_source says so on every scrape.
package main

import (
	"context"
	"flag"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	// Registers the "docker" container provider with the library's plugin table.
	_ "github.com/google/cadvisor/container/docker/install"
	"github.com/google/cadvisor/lib/cache/memory"
	"github.com/google/cadvisor/lib/container"
	"github.com/google/cadvisor/lib/manager"
	"github.com/google/cadvisor/lib/metrics"
	info "github.com/google/cadvisor/lib/model"
	"github.com/google/cadvisor/lib/utils/sysfs"
)

var (
	listen      = flag.String("listen", ":8080", "address to serve /metrics and /healthz on")
	stackLabel  = flag.String("prism_stack", "", "only containers with this org.prism.stack label get Docker's restart and OOM series (empty: every container)")
	storageAge  = flag.Duration("storage_duration", 2*time.Minute, "how long the in-memory stats cache keeps samples")
	dockerHost  = flag.String("docker_host", "unix:///var/run/docker.sock", "the Docker engine's API, for restarts and OOM kills")
	dockerAsk   = flag.Duration("docker_timeout", 5*time.Second, "time limit of one Docker API call")
	keptLabels  = []string{"org.prism.stack", "org.prism.service"}
	includedSet = container.MetricSet{
		container.CpuUsageMetrics:     struct{}{},
		container.MemoryUsageMetrics:  struct{}{},
		container.NetworkUsageMetrics: struct{}{},
	}
)

// containerLabels names a container by its Docker name, image and the stack's own labels, never its
// environment (which holds secrets of the images that take them only from there).
func containerLabels(c *info.ContainerInfo) map[string]string {
	set := map[string]string{metrics.LabelID: c.Name}
	if len(c.Aliases) > 0 {
		set[metrics.LabelName] = c.Aliases[0]
	}
	if c.Spec.Image != "" {
		set[metrics.LabelImage] = c.Spec.Image
	}
	for _, k := range keptLabels {
		if v, ok := c.Spec.Labels[k]; ok {
			set[metrics.ContainerLabelPrefix+k] = v
		}
	}
	return set
}

var (
	restartsDesc = prometheus.NewDesc("prism_container_restarts_total",
		"Restarts of the container by its restart policy (Docker's RestartCount; starts again at 0 when the container is recreated).",
		[]string{"name"}, nil)
	oomKilledDesc = prometheus.NewDesc("prism_container_oom_killed",
		"1 when Docker says the container's last exit was an OOM kill (State.OOMKilled).",
		[]string{"name"}, nil)
	oomKillsDesc = prometheus.NewDesc("prism_container_oom_kills_total",
		"OOM kills of the container, from Docker's oom events seen since this exporter started.",
		[]string{"name"}, nil)
	oomSourceDesc = prometheus.NewDesc("prism_container_oom_source",
		"Where the OOM kill series come from (source=docker: the engine's records, which nested cgroups do not hide).",
		[]string{"source"}, nil)
	dockerUpDesc = prometheus.NewDesc("prism_container_docker_up",
		"1 when the last scrape read the Docker engine's container records.",
		nil, nil)
)

// dockerCollector exports restarts and OOM kills per container from the Docker engine: RestartCount and
// State.OOMKilled read on each scrape, OOM events counted by a watcher of the event stream.
type dockerCollector struct {
	api  *client.Client
	mu   sync.Mutex
	ooms map[string]float64 // container name -> oom events seen
}

func (d *dockerCollector) filters() client.Filters {
	f := client.Filters{}
	if *stackLabel != "" {
		f = f.Add("label", "org.prism.stack="+*stackLabel)
	}
	return f
}

// watchOOMs counts "oom" events per container name, reconnecting when the stream ends.
func (d *dockerCollector) watchOOMs(ctx context.Context) {
	for ctx.Err() == nil {
		stream := d.api.Events(ctx, client.EventsListOptions{
			Filters: d.filters().Add("type", "container").Add("event", "oom"),
		})
	read:
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-stream.Err:
				klog.Warningf("Docker event stream ended (%v); reconnecting in 5 s", err)
				break read
			case msg := <-stream.Messages:
				name := msg.Actor.Attributes["name"]
				klog.Infof("OOM kill in container %s", name)
				d.mu.Lock()
				d.ooms[name]++
				d.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

func (d *dockerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{restartsDesc, oomKilledDesc, oomKillsDesc, oomSourceDesc, dockerUpDesc} {
		ch <- desc
	}
}

func (d *dockerCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(oomSourceDesc, prometheus.GaugeValue, 1, "docker")
	ctx, cancel := context.WithTimeout(context.Background(), *dockerAsk)
	defer cancel()
	up := 1.0
	list, err := d.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: d.filters()})
	if err != nil {
		klog.Warningf("Docker container list: %v", err)
		up = 0
	}
	d.mu.Lock()
	ooms := make(map[string]float64, len(d.ooms))
	for k, v := range d.ooms {
		ooms[k] = v
	}
	d.mu.Unlock()
	for _, c := range list.Items {
		got, err := d.api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			// Removed between the list and the inspect: it has no series this scrape.
			klog.V(2).Infof("Docker container inspect %s: %v", c.ID, err)
			continue
		}
		name := strings.TrimPrefix(got.Container.Name, "/")
		killed := 0.0
		if got.Container.State != nil && got.Container.State.OOMKilled {
			killed = 1
		}
		ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(got.Container.RestartCount), name)
		ch <- prometheus.MustNewConstMetric(oomKilledDesc, prometheus.GaugeValue, killed, name)
		// Every listed container has the counter, at 0 before its first OOM kill, so increase() sees the first.
		ch <- prometheus.MustNewConstMetric(oomKillsDesc, prometheus.CounterValue, ooms[name], name)
	}
	ch <- prometheus.MustNewConstMetric(dockerUpDesc, prometheus.GaugeValue, up)
}

func main() {
	klog.InitFlags(nil)
	flag.Parse()
	defer klog.Flush()

	resourceManager, err := manager.New(memory.New(*storageAge, nil), sysfs.NewRealSysFs(),
		manager.HousekeepingConfigFlags, includedSet, []string{""}, nil, "", 0)
	if err != nil {
		klog.Fatalf("cAdvisor manager: %v", err)
	}
	api, err := client.New(client.WithHost(*dockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		klog.Fatalf("Docker client for %s: %v", *dockerHost, err)
	}
	docker := &dockerCollector{api: api, ooms: map[string]float64{}}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go docker.watchOOMs(ctx)

	var started atomic.Bool
	go func() {
		if err := resourceManager.Start(); err != nil {
			klog.Fatalf("cAdvisor manager start: %v", err)
		}
		started.Store(true)
		klog.Infof("cAdvisor manager started; serving %s", *listen)
	}()

	registry := prometheus.NewRegistry()
	registry.MustRegister(
		metrics.NewPrometheusCollector(resourceManager, containerLabels, includedSet, clock.RealClock{},
			info.RequestOptions{IdType: info.TypeName, Count: 1, Recursive: true}),
		metrics.NewPrometheusMachineCollector(resourceManager, includedSet),
		docker,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !started.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	server := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown)
		_ = resourceManager.Stop()
	}()
	if err := server.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		klog.Errorf("serve %s: %v", *listen, err)
		os.Exit(1)
	}
}
