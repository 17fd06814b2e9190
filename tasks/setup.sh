#!/usr/bin/env bash
# `deno task setup` (also run by .ci/run): the optional native BLAS. On `--backend wasm` (the default) every matrix
# product goes to the system OpenBLAS through FFI when it can be opened (stages/backend/kernels/blas.ts): training runs
# ≈ 3.5× faster on 2 cores than pure WASM on one thread. Best effort: as root where apt-get exists it installs
# libopenblas0 (5 min timeout; `apt-get update` and a retry when the first try fails); elsewhere it prints the command
# to run. It never fails: without BLAS every task still runs, on pure WASM, and says so in one line at start.
set -uo pipefail

# The library where blas.ts looks for it (IVAAN_BLAS, else its candidates); prints the path, fails when there is none.
find_blas() {
  local ldconfig listing name candidate dir dirs
  ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
  listing="$([[ -x "$ldconfig" ]] && "$ldconfig" -p 2>/dev/null)"
  name="libopenblas.so.0"
  if [[ -n "${IVAAN_BLAS:-}" && "$IVAAN_BLAS" != "on" ]]; then
    [[ "$IVAAN_BLAS" == */* ]] && { [[ -e "$IVAAN_BLAS" ]] && echo "$IVAAN_BLAS"; return; }
    name="$IVAAN_BLAS" # a bare name, found as dlopen finds it
  fi
  candidate="$(awk -v name="$name" '$1 == name { print $NF; exit }' <<<"$listing")"
  [[ -n "$candidate" ]] && echo "$candidate" && return 0
  IFS=: read -ra dirs <<<"${LD_LIBRARY_PATH:-}"
  for dir in "${dirs[@]}"; do
    [[ -e "$dir/$name" ]] && echo "$dir/$name" && return 0
  done
  [[ -n "${IVAAN_BLAS:-}" && "$IVAAN_BLAS" != "on" ]] && return 1
  for candidate in /usr/lib/x86_64-linux-gnu/libopenblas.so.0 /usr/lib/aarch64-linux-gnu/libopenblas.so.0 \
    /usr/lib64/libopenblas.so.0 /usr/lib/libopenblas.so.0 \
    /opt/homebrew/opt/openblas/lib/libopenblas.dylib /usr/local/opt/openblas/lib/libopenblas.dylib; do
    [[ -e "$candidate" ]] && echo "$candidate" && return 0
  done
  return 1
}

if [[ "${IVAAN_BLAS:-}" == "off" || "${IVAAN_BLAS:-}" == "0" ]]; then
  echo "native BLAS: turned off by IVAAN_BLAS=${IVAAN_BLAS}; unset it to use OpenBLAS"
  exit 0
fi
if found="$(find_blas)"; then
  echo "native BLAS: $found (matrix products on wasm run on OpenBLAS)"
  exit 0
fi
if [[ -n "${IVAAN_BLAS:-}" && "$IVAAN_BLAS" != "on" ]]; then
  echo "warning: IVAAN_BLAS=$IVAAN_BLAS is not found: point it at an OpenBLAS library, or unset it" >&2
  exit 0
fi

os="$(uname -s)"
if [[ "$os" == Linux ]] && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing libopenblas0 (native BLAS: ≈ 3.5× faster training on wasm)"
  if timeout 300 bash -c 'export DEBIAN_FRONTEND=noninteractive; apt-get install -y --no-install-recommends libopenblas0 >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends libopenblas0 >/dev/null 2>&1; }' &&
    found="$(find_blas)"; then
    echo "native BLAS: $found (matrix products on wasm run on OpenBLAS)"
    exit 0
  fi
  echo "warning: libopenblas0 could not be installed: tasks run pure WASM on one thread, ≈ 3.5× slower" >&2
  exit 0
fi

# Not root, or no apt-get: what to run.
{
  echo "warning: no native BLAS (OpenBLAS) found: train, ablate and predict run pure WASM on one thread, ≈ 3.5× slower."
  if [[ "$os" == Darwin ]]; then
    echo "  install it with: brew install openblas"
    echo "  (found in /opt/homebrew or /usr/local; another prefix: export IVAAN_BLAS=\"\$(brew --prefix openblas)/lib/libopenblas.dylib\")"
  elif [[ "$os" == Linux ]]; then
    case "$(. /etc/os-release 2>/dev/null; echo " ${ID:-} ${ID_LIKE:-} ")" in
      *" fedora "* | *" rhel "* | *" centos "*) echo "  install it with: sudo dnf install openblas" ;;
      *" arch "*) echo "  install it with: sudo pacman -S openblas" ;;
      *" debian "* | *" ubuntu "*) echo "  install it with: sudo apt-get install libopenblas0" ;;
      *)
        echo "  install it with: sudo apt-get install libopenblas0 (Debian, Ubuntu), sudo dnf install openblas (Fedora),"
        echo "  sudo pacman -S openblas (Arch); or any OpenBLAS, then export IVAAN_BLAS=/path/to/libopenblas.so.0"
        ;;
    esac
  else
    echo "  install OpenBLAS, then export IVAAN_BLAS=/path/to/its/library (e.g. libopenblas.dll)"
  fi
  echo "  then run deno task setup again to check"
} >&2
exit 0
