# Sourced by the hack/tools/build-*.sh scripts: build one Go binary once into the cache
#   ${LLMOPS_CACHE:-$HOME/.cache/llmops-operator}/<name>/bin/<binary>
# A stamp file (.complete) is written only after a full build; it holds a key derived from the
# module's go.mod/go.sum (and sources), the Go version and the ldflags, so a changed pin, source or
# toolchain rebuilds from scratch. One build per output at a time: a second caller waits.
# shellcheck shell=bash
CACHE=${LLMOPS_CACHE:-$HOME/.cache/llmops-operator}
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

tool_log() { printf '%s: %s\n' "$TOOL" "$*" >&2; }
tool_die() { printf '%s: error: %s\n' "$TOOL" "$*" >&2; exit 1; }

gomod_version() {  # gomod_version <go.mod> <module path>: the version a go.mod pins
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"
}

# build_tool <out dir> <module dir> <package> <binary> <ldflags>: prints the binary's path.
build_tool() {
  local out=$1 moddir=$2 pkg=$3 binary=$4 ldflags=$5 key staging start
  command -v go >/dev/null 2>&1 || tool_die "go not found on PATH; install Go >= 1.26 from https://go.dev/dl"
  key=$({
    go env GOVERSION
    cat "$moddir"/go.mod "$moddir"/go.sum
    find "$moddir" -name '*.go' -print0 | sort -z | xargs -0r cat
    printf '%s\n' "$ldflags"
  } | sha256sum | cut -d' ' -f1)
  mkdir -p "$out"
  exec 9>"$out/.build.lock"
  if ! flock -n 9; then
    tool_log "another build holds $out/.build.lock; waiting"
    flock 9
  fi
  if [[ -f "$out/.complete" && "$(cat "$out/.complete")" == "$key" && -x "$out/bin/$binary" ]]; then
    tool_log "$(basename "$out") up to date"
    echo "$out/bin/$binary"
    return 0
  fi
  tool_log "building $(basename "$out") (the first build takes a few minutes; later ones reuse the Go build cache)"
  rm -f "$out/.complete"
  staging=$out/bin.partial
  rm -rf "$staging"
  mkdir -p "$staging"
  start=$SECONDS
  (cd "$moddir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$staging/$binary" "$pkg")
  rm -rf "$out/bin"
  mv "$staging" "$out/bin"
  printf '%s' "$key" >"$out/.complete"
  tool_log "$(basename "$out") built in $((SECONDS - start))s"
  echo "$out/bin/$binary"
}
