package crds

import (
	"context"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func crd(name string) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// Install returns once the API server marks the CRD Established, and not before.
func TestInstallWaitsForEstablished(t *testing.T) {
	cs := fake.NewSimpleClientset()
	api := cs.ApiextensionsV1().CustomResourceDefinitions()
	done := make(chan error, 1)
	go func() { done <- InstallWith(context.Background(), api, crd("widgets.example.com")) }()

	// Created, not yet Established: Install keeps waiting.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := api.Get(context.Background(), "widgets.example.com", metav1.GetOptions{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("CRD not created")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("returned before Established: %v", err)
	case <-time.After(200 * time.Millisecond):
	}

	got, _ := api.Get(context.Background(), "widgets.example.com", metav1.GetOptions{})
	got.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{
		Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue,
	}}
	if _, err := api.UpdateStatus(context.Background(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Install did not return after the CRD was Established")
	}
}

// A CRD that never becomes Established ends the wait at its deadline, named.
func TestWaitEstablishedTimesOut(t *testing.T) {
	cs := fake.NewSimpleClientset(crd("stuck.example.com"))
	err := WaitEstablished(context.Background(), cs.ApiextensionsV1().CustomResourceDefinitions(), "stuck.example.com", 100*time.Millisecond)
	if err == nil {
		t.Fatal("no error for a CRD that is never Established")
	}
	if want := "CRD stuck.example.com not Established"; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
		t.Fatalf("error %q does not name the CRD", err)
	}
}
