#!/bin/sh
# Copies the schema files of README.md from the Go module cache, downloading
# the modules through the Go module proxy first. Run from this directory.
set -eu
KV=sigs.k8s.io/kubectl-validate@v0.0.5-0.20260105161640-a97ccfaca20b
PO=github.com/prometheus-operator/prometheus-operator@v0.85.0
dir() { GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'; }
kv=$(dir "$KV")/pkg/openapiclient/builtins/1.35
for f in api/v1 apis/apps/v1 apis/autoscaling/v2 apis/policy/v1 apis/networking.k8s.io/v1; do
	gzip -9nc "$kv/$f.json" > "openapi/$(echo "$f" | tr / _).json.gz"
	sha256sum "$kv/$f.json"
done
po=$(dir "$PO")/example/prometheus-operator-crd
cp "$po/monitoring.coreos.com_servicemonitors.yaml" "$po/monitoring.coreos.com_prometheusrules.yaml" crds/
chmod 644 crds/*
