#!/usr/bin/env bash
# Build the lab's binaries (Kubernetes control plane, kubectl, etcd, KWOK, helm, JobSet)
# from the Go modules pinned in tools/*/go.mod, through the Go module proxy.
#
#   tools/build.sh            build what is missing, print BIN_DIR=<dir> last
#   tools/build.sh GROUP...   build only these groups (etcd, kwok, helm, jobset, kubernetes)
#   tools/build.sh --check    exit 1 unless every binary is cached (then print BIN_DIR too)
#   tools/build.sh --update   regenerate the go.mod/go.sum files from the
#                             versions below (kubernetes: the staging replaces
#                             come from the release's own go.mod)
#
# Binaries are cached outside git under ${GRIDAWARE_CACHE:-~/.cache/gridaware}/bin,
# one directory per module group keyed by go.mod+go.sum+Go version, so they are
# rebuilt only when a version changes. A build goes to a temporary directory and
# is renamed into place only when complete, so an interrupted build never leaves
# a half-filled cache entry.
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
JOBSET_VERSION=v0.10.1

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${GRIDAWARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gridaware}"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false"

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH: install Go >= 1.26 (https://go.dev/doc/install) and retry"

# group -> main packages
declare -A PKGS=(
  [kubernetes]="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl"
  [etcd]="go.etcd.io/etcd/server/v3"
  [kwok]="sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl"
  [helm]="helm.sh/helm/v3/cmd/helm"
  [jobset]="sigs.k8s.io/jobset"
)
# group -> binaries it produces (the etcd main package is named server/v3)
declare -A BINS=(
  [kubernetes]="kube-apiserver kube-controller-manager kube-scheduler kubectl"
  [etcd]="etcd"
  [kwok]="kwok kwokctl"
  [helm]="helm"
  [jobset]="jobset"
)
GROUPS_ORDER="etcd kwok helm jobset kubernetes"

module_version() { (cd "$TOOLS_DIR/$1" && go list -m -f '{{.Version}}' "$2"); }

update() {
  local dir
  log "regenerating tools/*/go.mod"
  dir="$TOOLS_DIR/kubernetes"; mkdir -p "$dir"; rm -f "$dir/go.mod" "$dir/go.sum"
  local upstream minor
  upstream=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  minor="v0.${K8S_VERSION#v1.}"
  (
    cd "$dir"
    go mod init gridaware.dev/tools/kubernetes >/dev/null 2>&1
    # every "k8s.io/x => ./staging/src/k8s.io/x" becomes "k8s.io/x => k8s.io/x v0.Y.Z"
    grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$upstream" | awk '{print $1}' | while read -r m; do
      go mod edit -replace "$m=$m@$minor"
    done
    go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
    for p in ${PKGS[kubernetes]}; do go get -tool "$p@$K8S_VERSION"; done
    go mod edit -go=1.26.0 && go mod tidy
  )
  for g in etcd kwok helm jobset; do
    dir="$TOOLS_DIR/$g"; mkdir -p "$dir"; rm -f "$dir/go.mod" "$dir/go.sum"
    local v
    case $g in etcd) v=$ETCD_VERSION;; kwok) v=$KWOK_VERSION;; helm) v=$HELM_VERSION;; jobset) v=$JOBSET_VERSION;; esac
    (
      cd "$dir"
      go mod init "gridaware.dev/tools/$g" >/dev/null 2>&1
      for p in ${PKGS[$g]}; do go get -tool "$p@$v"; done
      go mod edit -go=1.26.0 && go mod tidy
    )
  done
  log "done; commit tools/*/go.mod and go.sum"
}

group_key() {
  cat "$TOOLS_DIR/$1/go.mod" "$TOOLS_DIR/$1/go.sum" <(go env GOVERSION GOOS GOARCH) \
    <(ldflags_for "$1") | sha256sum | cut -c1-12
}

group_dir() { echo "$CACHE/bin/$1-$(group_key "$1")"; }

# A cache entry is valid when its manifest lists every binary with a matching checksum.
valid() {
  local d=$1
  [[ -f "$d/MANIFEST" ]] || return 1
  (cd "$d" && sha256sum --quiet -c MANIFEST >/dev/null 2>&1) || return 1
  for b in ${BINS[$2]}; do [[ -x "$d/$b" ]] || return 1; done
}

ldflags_for() {
  case $1 in
    kubernetes)
      local v maj min
      v=$(module_version kubernetes k8s.io/kubernetes); maj=${v#v}; maj=${maj%%.*}; min=${v#v*.}; min=${min%%.*}
      local f=""
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        f+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$maj -X $pkg.gitMinor=$min -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
      done
      echo "-s -w$f";;
    kwok)
      local v; v=$(module_version kwok sigs.k8s.io/kwok)
      echo "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$v";;
    helm)
      # helm's default Kubernetes version (for `helm template`, lint deprecations) comes from
      # the client-go it is built with, as upstream's Makefile sets it
      local v cg maj min
      v=$(module_version helm helm.sh/helm/v3)
      cg=$(module_version helm k8s.io/client-go); maj=1; min=${cg#v0.}; min=${min%%.*}
      local f="-s -w -X helm.sh/helm/v3/internal/version.version=$v"
      for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        f+=" -X $pkg.k8sVersionMajor=$maj -X $pkg.k8sVersionMinor=$min"
      done
      echo "$f";;
    jobset)
      local v; v=$(module_version jobset sigs.k8s.io/jobset)
      echo "-s -w -X sigs.k8s.io/jobset/pkg/version.GitVersion=$v";;
    etcd) echo "-s -w";;
  esac
}

build_group() {
  local g=$1 d tmp start
  d=$(group_dir "$g")
  if valid "$d" "$g"; then log "$g: cached ($d)"; return; fi
  [[ -e "$d" ]] && { log "$g: cache entry $d is incomplete or corrupt, rebuilding"; rm -rf "$d"; }
  mkdir -p "$CACHE/bin"
  tmp=$(mktemp -d "$CACHE/bin/.build-$g-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  start=$(date +%s)
  log "$g: downloading modules"
  (cd "$TOOLS_DIR/$g" && go mod download)
  log "$g: building ${BINS[$g]} (the slow part: about $( [[ $g == kubernetes ]] && echo '5-10' || echo '1-2') min on 2 cores when cold)"
  if [[ $g == etcd ]]; then
    (cd "$TOOLS_DIR/$g" && go build -trimpath -ldflags "$(ldflags_for "$g")" -o "$tmp/etcd" ${PKGS[$g]})
  else
    (cd "$TOOLS_DIR/$g" && go build -trimpath -ldflags "$(ldflags_for "$g")" -o "$tmp/" ${PKGS[$g]})
  fi
  (cd "$tmp" && sha256sum ${BINS[$g]} > MANIFEST)
  rm -rf "$d"; mv "$tmp" "$d"
  trap - EXIT
  log "$g: built in $(( $(date +%s) - start ))s -> $d"
}

case "${1:-}" in
  --update) update; exit 0;;
  --check)
    for g in $GROUPS_ORDER; do valid "$(group_dir "$g")" "$g" || exit 1; done;;
  "") ;;
  *)
    for g in "$@"; do
      [[ -n "${PKGS[$g]:-}" ]] || die "unknown argument '$g' (use --check, --update, or groups: $GROUPS_ORDER)"
    done
    for g in "$@"; do build_group "$g"; done
    exit 0;;
esac

[[ "${1:-}" == --check ]] || for g in $GROUPS_ORDER; do build_group "$g"; done

# one directory with every binary, as symlinks into the per-group entries
key=$(for g in $GROUPS_ORDER; do group_key "$g"; done | sha256sum | cut -c1-12)
out="$CACHE/bin/lab-$key"
if [[ ! -d "$out" ]]; then
  tmp=$(mktemp -d "$CACHE/bin/.lab-XXXXXX")
  for g in $GROUPS_ORDER; do for b in ${BINS[$g]}; do ln -s "$(group_dir "$g")/$b" "$tmp/$b"; done; done
  mv "$tmp" "$out"
fi
echo "BIN_DIR=$out"
