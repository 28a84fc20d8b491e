package benchcmp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/wasmpool/wasmpool/capability/httpcap"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// Issue 15's flagship, I/O-bound tasks: fetch 200 URLs from a local HTTP
// server whose every response takes 20 ms, with 50 thread-like workers.
// Three executors do it in the same run, interleaved round by round (a load
// passing over the machine then weighs on all three alike):
//
//   - the floor: a plain Go pool, 50 goroutines sharing one net/http client;
//   - wasmpool threads, 50 workers: a Go guest calling guest.HTTP.Get, the
//     task granted HTTP to the server's address;
//   - Python's ThreadPoolExecutor(max_workers=50) with urllib (fetch.py),
//     when python3 is there.
//
// Each figure is the median over the rounds of the round's wall time, and
// of its ratio to the Go pool's in the same round. The waiting alone is
// 200 / 50 x 20 ms = 80 ms a round: what is over it is each executor's own.
const (
	fetchURLs    = 200
	fetchWorkers = 50
	fetchDelay   = 20 * time.Millisecond
)

// The executors of the fetch measure, as its table names them.
const (
	fetchGo       = "go pool, net/http"
	fetchWasmpool = "wasmpool threads, guest.HTTP"
	fetchPython   = "python ThreadPoolExecutor, urllib"
)

// FetchCost is the fetch measure's figures.
type FetchCost struct {
	URLs    int           `json:"urls"`
	Workers int           `json:"workers"`
	Delay   time.Duration `json:"delay_ns"` // the server's, per response
	Rounds  int           `json:"rounds"`
	// Wall is the median wall time of a round (all the URLs), by executor.
	Wall map[string]time.Duration `json:"wall_ns"`
	// Ratios are the medians over the rounds of an executor's wall time
	// over the Go pool's in the same round; VsPython likewise over
	// Python's (wasmpool's only).
	Ratios   map[string]float64 `json:"ratios_vs_go"`
	VsPython float64            `json:"wasmpool_vs_python,omitempty"`
	Python   string             `json:"python,omitempty"` // its version
	// PythonNote says why Python has no figures, when it has none.
	PythonNote string `json:"python_note,omitempty"`
}

// fetcher is one executor of the fetch measure: round fetches every URL
// once and checks every body.
type fetcher interface {
	round(ctx context.Context) error
	close()
}

// measureFetch starts the slow server, runs the executors' rounds, and
// stops it all.
func measureFetch(ctx context.Context, c Config, prog *progress) (*FetchCost, error) {
	srv, urls, err := startSlowServer(fetchDelay)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	rounds := 15
	if c.Budget < time.Second {
		rounds = 7
	}
	if c.Budget < 100*time.Millisecond {
		rounds = 3
	}
	fc := &FetchCost{URLs: fetchURLs, Workers: fetchWorkers, Delay: fetchDelay, Rounds: rounds,
		Wall: map[string]time.Duration{}, Ratios: map[string]float64{}}

	names := []string{fetchGo, fetchWasmpool}
	fs := map[string]fetcher{fetchGo: newGoFetcher(urls)}
	defer func() {
		for _, f := range fs {
			f.close()
		}
	}()
	prog.say("fetch: compiling the Go guest")
	wf, err := newWasmpoolFetcher(ctx, c, urls)
	if err != nil {
		return nil, fmt.Errorf("wasmpool: %w", err)
	}
	fs[fetchWasmpool] = wf
	// Python is a comparison, not the subject: without it, the measure goes
	// on and says why.
	if py, err := findPython(c); err != nil {
		fc.PythonNote = "Python not measured: " + err.Error()
	} else if pf, err := newPythonFetcher(ctx, py, urls); err != nil {
		fc.PythonNote = "Python not measured: " + err.Error()
	} else {
		fs[fetchPython] = pf
		names = append(names, fetchPython)
		fc.Python = pf.python
	}

	// One round each, untimed: connections, warm instances, Python's
	// threads, as a long-lived executor has them.
	for _, name := range names {
		if err := fs[name].round(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	walls := map[string][]time.Duration{}
	ratios := map[string][]float64{}
	var vsPy []float64
	for round := range rounds {
		prog.say(fmt.Sprintf("fetch %d URLs, %d workers: round %d/%d", fetchURLs, fetchWorkers, round+1, rounds))
		took := map[string]time.Duration{}
		for n := range names {
			name := names[(n+round)%len(names)]
			start := time.Now()
			if err := fs[name].round(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			took[name] = time.Since(start)
			walls[name] = append(walls[name], took[name])
		}
		for _, name := range names[1:] {
			ratios[name] = append(ratios[name], float64(took[name])/float64(took[fetchGo]))
		}
		if py, ok := took[fetchPython]; ok {
			vsPy = append(vsPy, float64(took[fetchWasmpool])/float64(py))
		}
	}
	for name, w := range walls {
		fc.Wall[name] = median(w)
	}
	for name, r := range ratios {
		fc.Ratios[name] = medianFloat(r)
	}
	fc.VsPython = medianFloat(vsPy)
	return fc, nil
}

// startSlowServer serves on a loopback port: each response, "page PATH",
// comes after delay (the latency of a remote API). It returns the URLs to
// fetch.
func startSlowServer(delay time.Duration) (*http.Server, []string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("fetch: the local HTTP server: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "page "+r.URL.Path)
	})}
	go func() { _ = srv.Serve(ln) }()
	urls := make([]string, fetchURLs)
	for i := range urls {
		urls[i] = fmt.Sprintf("http://%s/%d", ln.Addr(), i)
	}
	return srv, urls, nil
}

// wantBody is what the server answers for the i-th URL.
func wantBody(i int) string { return "page /" + strconv.Itoa(i) }

// goFetcher is the floor: what a Go programmer writes, 50 goroutines taking
// URLs from a channel, one client whose idle connections they share.
type goFetcher struct {
	urls   []string
	client *http.Client
}

func newGoFetcher(urls []string) *goFetcher {
	return &goFetcher{urls: urls, client: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: fetchWorkers, // http.DefaultTransport's 2 would open and close connections
	}}}
}

func (g *goFetcher) round(ctx context.Context) error {
	work := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range fetchWorkers {
		wg.Go(func() {
			for i := range work {
				if err := g.get(ctx, i); err != nil {
					once.Do(func() { first = err })
				}
			}
		})
	}
	for i := range g.urls {
		work <- i
	}
	close(work)
	wg.Wait()
	return first
}

func (g *goFetcher) get(ctx context.Context, i int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.urls[i], nil)
	if err != nil {
		return err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if string(body) != wantBody(i) {
		return fmt.Errorf("%s answered %q, want %q", g.urls[i], body, wantBody(i))
	}
	return nil
}

func (g *goFetcher) close() { g.client.CloseIdleConnections() }

// wasmpoolFetcher is the same on a pool of 50 thread workers: each URL a
// task of the caps module's "fetch" (guest.HTTP.Get, output "STATUS BODY").
type wasmpoolFetcher struct {
	e    *engine.Engine
	p    *pool.Pool
	m    *engine.Module
	urls []string
}

func newWasmpoolFetcher(ctx context.Context, c Config, urls []string) (*wasmpoolFetcher, error) {
	path, err := testmod.Build("caps")
	if err != nil {
		return nil, err
	}
	cacheDir := c.CacheDir
	if cacheDir == "" {
		cacheDir = testmod.CompileCache()
	}
	e, err := engine.New(ctx, engine.Config{CacheDir: cacheDir, Capabilities: []engine.Capability{httpcap.New(httpcap.Policy{})}})
	if err != nil {
		return nil, err
	}
	m, err := e.CompileFile(ctx, path)
	if err == nil {
		var p *pool.Pool
		// The server's address itself: a name resolving to loopback is
		// refused by the HTTP capability.
		p, err = pool.New(e, pool.Config{Mode: pool.Threads, Workers: fetchWorkers,
			Grants: []string{httpcap.Name}, GrantArgs: map[string][]string{httpcap.Name: {"127.0.0.1"}}})
		if err == nil {
			return &wasmpoolFetcher{e: e, p: p, m: m, urls: urls}, nil
		}
	}
	_ = e.Close(context.WithoutCancel(ctx))
	return nil, err
}

func (w *wasmpoolFetcher) round(ctx context.Context) error {
	tasks := func(yield func(engine.Task) bool) {
		for _, u := range w.urls {
			if !yield(engine.Task{Module: w.m, Func: "fetch", Input: []byte(u)}) {
				return
			}
		}
	}
	i := 0
	for res, err := range w.p.Map(ctx, tasks) {
		if err != nil {
			return err
		}
		if want := "200 " + wantBody(i); string(res.Output) != want {
			return fmt.Errorf("task %d output %q, want %q", i, res.Output, want)
		}
		i++
	}
	if i != len(w.urls) {
		return fmt.Errorf("%d results for %d URLs", i, len(w.urls))
	}
	return nil
}

func (w *wasmpoolFetcher) close() {
	_ = w.p.Close()
	_ = w.e.Close(context.Background())
}

// fetchTargets are issue 15's: within 1.3x of the Go pool's wall time, and
// faster than Python's.
func (r *Report) fetchTargets() []Target {
	name := fmt.Sprintf("I/O-bound: %d URLs x %s, %d workers: wasmpool threads vs go pool", fetchURLs, fmtDur(fetchDelay), fetchWorkers)
	vsGo := Target{Name: name + " (wall, median ratio)", Unit: "ratio", Goal: fmt.Sprintf("<= %.1f", goalFetchVsGo)}
	vsPy := Target{Name: "  the same vs Python's ThreadPoolExecutor(50) with urllib", Unit: "ratio", Goal: "< 1"}
	f := r.Fetch
	if f == nil {
		return []Target{vsGo, vsPy}
	}
	vsGo.Name = fmt.Sprintf("%s (wall, median of %d rounds)", name, f.Rounds)
	if ratio := f.Ratios[fetchWasmpool]; ratio > 0 {
		vsGo.Value, vsGo.Display, vsGo.Met = ratio, fmtRatio(ratio)+"x", met(ratio <= goalFetchVsGo)
		vsGo.Anchor = fmt.Sprintf("wasmpool %s, go pool %s; the waiting alone %s", fmtDur(f.Wall[fetchWasmpool]),
			fmtDur(f.Wall[fetchGo]), fmtDur(fetchFloor()))
	}
	if f.VsPython > 0 {
		vsPy.Value, vsPy.Display, vsPy.Met = f.VsPython, fmtRatio(f.VsPython)+"x", met(f.VsPython < 1)
		vsPy.Anchor = fmt.Sprintf("python %s, %sx the go pool's", fmtDur(f.Wall[fetchPython]), fmtRatio(f.Ratios[fetchPython]))
	} else {
		vsPy.Anchor = or(f.PythonNote, "Python not measured")
	}
	return []Target{vsGo, vsPy}
}

const goalFetchVsGo = 1.3

// fetchFloor is the time the server's delays alone take with every worker
// busy: what no executor can beat.
func fetchFloor() time.Duration {
	return time.Duration((fetchURLs+fetchWorkers-1)/fetchWorkers) * fetchDelay
}

// writeFetch prints the fetch measure's table.
func (r *Report) writeFetch(w io.Writer) {
	f := r.Fetch
	if f == nil {
		return
	}
	fmt.Fprintf(w, "\nI/O-bound: %d URLs from a local HTTP server, %s per response, %d workers; rounds interleaved,\n"+
		"medians of %d rounds (the waiting alone: %s a round)\n", f.URLs, fmtDur(f.Delay), f.Workers, f.Rounds, fmtDur(fetchFloor()))
	names := []string{fetchGo, fetchWasmpool, fetchPython}
	for _, name := range names {
		wall, ok := f.Wall[name]
		switch {
		case ok && name == fetchGo:
			fmt.Fprintf(w, "  %-34s %8s\n", name, fmtDur(wall))
		case ok:
			fmt.Fprintf(w, "  %-34s %8s  %sx the go pool's\n", name, fmtDur(wall), fmtRatio(f.Ratios[name]))
		default:
			fmt.Fprintf(w, "  %-34s %8s  %s\n", name, "-", f.PythonNote)
		}
	}
}
