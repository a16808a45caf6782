package scale

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/test/binary"
)

const (
	// perNamespace is how many Canaries share a namespace, as a team's
	// apps would.
	perNamespace = 100
	// interval and iterations make each Canary a blue/green release of
	// two 10-second checks.
	interval   = "10s"
	iterations = 2
	// changes are the pod-template edits whose detection is timed,
	// spread over changeSpread.
	changes      = 20
	changeSpread = time.Minute
	// batch is how many Canaries are changed at once.
	batch = 100
	// podsPerNode is each kwok node's pod capacity (test/controlplane).
	podsPerNode = 20000
	// writers is how many objects the benchmark writes at once.
	writers = 32
)

// nodesFor is how many kwok nodes n Canaries need: a target and a primary
// pod each, and room for the releases.
func nodesFor(n int) int { return (2*n+batch)/podsPerNode + 1 }

// namespaces is how many namespaces n Canaries fill.
func namespaces(n int) int { return (n + perNamespace - 1) / perNamespace }

// key names Canary i, its target Deployment and its namespace.
func key(i int) types.NamespacedName {
	return types.NamespacedName{Namespace: fmt.Sprintf("scale-%d", i/perNamespace), Name: fmt.Sprintf("app-%d", i)}
}

func deployment(k types.NamespacedName) *appsv1.Deployment {
	labels := map[string]string{"app": k.Name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: k.Name, Namespace: k.Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "app:0",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
}

func canary(k types.NamespacedName) *sluicev1beta1.Canary {
	return &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: k.Name, Namespace: k.Namespace},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  "kubernetes",
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: k.Name},
			Service:   sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromString("http")},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: interval, Threshold: 2, Iterations: iterations},
		},
	}
}

// createObjects creates the namespaces, then each Deployment and its
// Canary, writers at a time.
func createObjects(ctx context.Context, c client.Client, n int) error {
	for i := range namespaces(n) {
		if err := create(ctx, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: key(i * perNamespace).Namespace}}); err != nil {
			return err
		}
	}
	return parallel(n, func(i int) error {
		k := key(i)
		if err := create(ctx, c, deployment(k)); err != nil {
			return err
		}
		return create(ctx, c, canary(k))
	})
}

// create creates o, trying again after a failure the API server may get
// over (a timeout under load); one that exists already counts as done.
func create(ctx context.Context, c client.Client, o client.Object) error {
	var err error
	for attempt := range 5 {
		if err = c.Create(ctx, o); err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * time.Second)
	}
	return fmt.Errorf("create %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
}

// parallel runs do for 0..n-1, writers at a time, and returns the first
// error.
func parallel(n int, do func(i int) error) error {
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range min(writers, n) {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// waitTargetsAvailable waits until the n target Deployments run their pod,
// listing them every 10 s: a look at 10,000 Deployments loads the API
// server, which is busy making them run.
func waitTargetsAvailable(ctx context.Context, c client.Client, n int) error {
	deadline := time.Now().Add(initTimeout)
	for {
		available := 0
		for ns := range namespaces(n) {
			var list appsv1.DeploymentList
			if err := c.List(ctx, &list, client.InNamespace(key(ns*perNamespace).Namespace)); err != nil {
				return fmt.Errorf("list Deployments: %w", err)
			}
			for _, d := range list.Items {
				if d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas >= 1 && d.Status.UpdatedReplicas >= 1 {
					available++
				}
			}
		}
		if available == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d target Deployments Available after %s", available, n, initTimeout)
		}
		progress(n, "%d of %d target Deployments Available", available, n)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
		}
	}
}

// setImage changes the target's pod template with one strategic merge
// patch, with no read first: the write is what the latency counts from.
func setImage(ctx context.Context, c client.Client, k types.NamespacedName, image string) error {
	patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: k.Name, Namespace: k.Namespace}}
	if err := c.Patch(ctx, d, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		return fmt.Errorf("set the image of %s: %w", k, err)
	}
	return nil
}

// detect edits the pod templates of changes Canaries spread over all of
// them, one every changeSpread/changes, and returns, sorted, the time from
// just before each write until the benchmark's watch shows the Canary's
// status with the new revision (lastAppliedSpec changed, Progressing).
// It then waits for those releases to finish, so that the batch runs
// alone.
func detect(ctx context.Context, c client.Client, tr *tracker, op *binary.Operator, n int) ([]time.Duration, error) {
	type change struct {
		key      types.NamespacedName
		began    time.Time
		seen     *await
		released *await
	}
	var all []change
	first := time.Now()
	for i := range changes {
		k := key(i*(n/changes) + 1)
		was := tr.get(k)
		if was == nil {
			return nil, fmt.Errorf("canary %s is not in the benchmark's cache", k)
		}
		applied, promoted := was.Status.LastAppliedSpec, was.Status.LastPromotedSpec
		ch := change{
			key: k,
			seen: tr.await(k, func(c *sluicev1beta1.Canary) bool {
				return c.Status.LastAppliedSpec != applied && c.Status.Phase == sluicev1beta1.CanaryPhaseProgressing
			}),
			released: tr.await(k, func(c *sluicev1beta1.Canary) bool { return released(c, promoted) }),
		}
		ch.began = time.Now()
		if err := setImage(ctx, c, k, "app:1"); err != nil {
			return nil, err
		}
		all = append(all, ch)
		time.Sleep(time.Until(first.Add(time.Duration(i+1) * changeSpread / changes)))
	}
	var latencies []time.Duration
	for _, ch := range all {
		if err := waitFor(ctx, op, 2*time.Minute, fmt.Sprintf("the new revision of %s in its status", ch.key), ch.seen.done); err != nil {
			return nil, err
		}
		latencies = append(latencies, ch.seen.at.Sub(ch.began))
	}
	for _, ch := range all {
		if err := waitFor(ctx, op, 5*time.Minute, fmt.Sprintf("the release of %s", ch.key), ch.released.done); err != nil {
			return nil, err
		}
	}
	slices.Sort(latencies)
	return latencies, nil
}

// releaseBatch changes batch Canaries at once, none of those detect
// changed, and returns the time from the first write until the last of
// them has Succeeded with the new revision.
func releaseBatch(ctx context.Context, c client.Client, tr *tracker, op *binary.Operator, n int) (time.Duration, error) {
	keys := make([]types.NamespacedName, batch)
	done := make([]*await, batch)
	for i := range batch {
		// Offset by 2: detect changed those at 1 modulo n/changes, a
		// multiple of n/batch.
		keys[i] = key(i*(n/batch) + 2)
		was := tr.get(keys[i])
		if was == nil {
			return 0, fmt.Errorf("canary %s is not in the benchmark's cache", keys[i])
		}
		promoted := was.Status.LastPromotedSpec
		done[i] = tr.await(keys[i], func(c *sluicev1beta1.Canary) bool { return released(c, promoted) })
	}
	began := time.Now()
	if err := parallel(batch, func(i int) error { return setImage(ctx, c, keys[i], "app:2") }); err != nil {
		return 0, err
	}
	var last time.Time
	for i, w := range done {
		if err := waitFor(ctx, op, 10*time.Minute, fmt.Sprintf("the release of %s", keys[i]), w.done); err != nil {
			return 0, err
		}
		if w.at.After(last) {
			last = w.at
		}
	}
	return last.Sub(began), nil
}

// released reports whether a Canary has promoted a revision other than
// the one it had promoted before, and settled.
func released(c *sluicev1beta1.Canary, promotedBefore string) bool {
	return c.Status.Phase == sluicev1beta1.CanaryPhaseSucceeded && c.Status.LastPromotedSpec != promotedBefore && settled(c)
}
