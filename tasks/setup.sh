#!/usr/bin/env bash
# `deno task setup` (also run by .ci/run): the optional native libraries, each best effort.
# - OpenBLAS: on `--backend wasm` (the default) every matrix product goes to the system OpenBLAS through FFI when it
#   can be opened (stages/backend/kernels/blas.ts): training runs ≈ 3.5× faster on 2 cores than pure WASM on one thread.
# - OpenSlide: whole-slide images (.svs, .ndpi, .mrxs, pyramidal TIFF, …) are read through libopenslide over FFI
#   (stages/slide/openslide.ts); without it ordinary PNG/JPEG/TIFF still work, and a slide says how to install it.
# - nginx with its WebDAV module (ngx_http_dav_module, compiled into Debian's `nginx`): the HTTP cache server that
#   tests/remote_cache_test.ts starts on loopback for the remote cache (pipeline/store/remote.ts). Tasks never need it.
# - redis-server: the Redis of the work queue (`--queue`, `deno task worker`; pipeline/queue/) that tests/queue_test.ts
#   starts on loopback. Tasks never need it on their own machine; a distributed sweep needs one somewhere.
# As root where apt-get exists it installs libopenblas0, libopenslide0, nginx and redis-server (5 min timeout each; `apt-get update`
# and a retry when the first try fails); elsewhere it prints the command to run. It never fails: without BLAS every task
# still runs, on pure WASM, and says so in one line at start; without OpenSlide every task but reading slides runs;
# without nginx only the remote cache tests fail, without redis-server only the queue tests (each saying to run this).
set -uo pipefail

# A bare library name as dlopen finds it: the ldconfig cache, then LD_LIBRARY_PATH; prints the path, fails when absent.
find_by_name() {
  local ldconfig listing candidate dir dirs
  ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
  listing="$([[ -x "$ldconfig" ]] && "$ldconfig" -p 2>/dev/null)"
  candidate="$(awk -v name="$1" '$1 == name { print $NF; exit }' <<<"$listing")"
  [[ -n "$candidate" ]] && echo "$candidate" && return 0
  IFS=: read -ra dirs <<<"${LD_LIBRARY_PATH:-}"
  for dir in "${dirs[@]}"; do
    [[ -e "$dir/$1" ]] && echo "$dir/$1" && return 0
  done
  return 1
}

# The library where blas.ts looks for it (IVAAN_BLAS, else its candidates); prints the path, fails when there is none.
find_blas() {
  local name candidate
  name="libopenblas.so.0"
  if [[ -n "${IVAAN_BLAS:-}" && "$IVAAN_BLAS" != "on" ]]; then
    [[ "$IVAAN_BLAS" == */* ]] && { [[ -e "$IVAAN_BLAS" ]] && echo "$IVAAN_BLAS"; return; }
    name="$IVAAN_BLAS" # a bare name, found as dlopen finds it
  fi
  find_by_name "$name" && return 0
  [[ -n "${IVAAN_BLAS:-}" && "$IVAAN_BLAS" != "on" ]] && return 1
  for candidate in /usr/lib/x86_64-linux-gnu/libopenblas.so.0 /usr/lib/aarch64-linux-gnu/libopenblas.so.0 \
    /usr/lib64/libopenblas.so.0 /usr/lib/libopenblas.so.0 \
    /opt/homebrew/opt/openblas/lib/libopenblas.dylib /usr/local/opt/openblas/lib/libopenblas.dylib; do
    [[ -e "$candidate" ]] && echo "$candidate" && return 0
  done
  return 1
}

# apt-get install of one package, quietly, as root: 5 min timeout, `apt-get update` and a retry when the first try fails.
apt_install() {
  timeout 300 bash -c 'export DEBIAN_FRONTEND=noninteractive; apt-get install -y --no-install-recommends "$1" >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "$1" >/dev/null 2>&1; }' _ "$1"
}

can_apt() { [[ "$(uname -s)" == Linux ]] && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; }

# OpenBLAS: found, installed, or what to run.
setup_blas() {
  if [[ "${IVAAN_BLAS:-}" == "off" || "${IVAAN_BLAS:-}" == "0" ]]; then
    echo "native BLAS: turned off by IVAAN_BLAS=${IVAAN_BLAS}; unset it to use OpenBLAS"
    return 0
  fi
  if found="$(find_blas)"; then
    echo "native BLAS: $found (matrix products on wasm run on OpenBLAS)"
    return 0
  fi
  if [[ -n "${IVAAN_BLAS:-}" && "$IVAAN_BLAS" != "on" ]]; then
    echo "warning: IVAAN_BLAS=$IVAAN_BLAS is not found: point it at an OpenBLAS library, or unset it" >&2
    return 0
  fi

  os="$(uname -s)"
  if can_apt; then
    echo "installing libopenblas0 (native BLAS: ≈ 3.5× faster training on wasm)"
    if apt_install libopenblas0 && found="$(find_blas)"; then
      echo "native BLAS: $found (matrix products on wasm run on OpenBLAS)"
      return 0
    fi
    echo "warning: libopenblas0 could not be installed: tasks run pure WASM on one thread, ≈ 3.5× slower" >&2
    return 0
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
  return 0
}

# The library where openslide.ts looks for it (IVAAN_OPENSLIDE, else its candidates); prints the path, fails when none.
find_openslide() {
  local name candidate
  if [[ -n "${IVAAN_OPENSLIDE:-}" ]]; then
    [[ "$IVAAN_OPENSLIDE" == */* ]] && { [[ -e "$IVAAN_OPENSLIDE" ]] && echo "$IVAAN_OPENSLIDE"; return; }
  fi
  for name in ${IVAAN_OPENSLIDE:-libopenslide.so.0 libopenslide.so.1 libopenslide.so}; do
    find_by_name "$name" && return 0
  done
  [[ -n "${IVAAN_OPENSLIDE:-}" ]] && return 1
  for candidate in /usr/lib/x86_64-linux-gnu/libopenslide.so.{0,1} /usr/lib/aarch64-linux-gnu/libopenslide.so.{0,1} \
    /usr/lib64/libopenslide.so.{0,1} /usr/lib/libopenslide.so.{0,1} \
    /opt/homebrew/lib/libopenslide.1.dylib /usr/local/lib/libopenslide.1.dylib; do
    [[ -e "$candidate" ]] && echo "$candidate" && return 0
  done
  return 1
}

# OpenSlide: found, installed (libopenslide0: OpenSlide 3.4, Debian 12 and Ubuntu; libopenslide1: OpenSlide 4), or
# what to run.
setup_openslide() {
  local found os package
  if found="$(find_openslide)"; then
    echo "OpenSlide: $found (whole slides: .svs, .ndpi, .mrxs, pyramidal TIFF, …)"
    return 0
  fi
  if [[ -n "${IVAAN_OPENSLIDE:-}" ]]; then
    echo "warning: IVAAN_OPENSLIDE=$IVAAN_OPENSLIDE is not found: point it at libopenslide, or unset it" >&2
    return 0
  fi
  os="$(uname -s)"
  if can_apt; then
    for package in libopenslide0 libopenslide1; do
      echo "installing $package (OpenSlide: reading whole-slide images)"
      if apt_install "$package" && found="$(find_openslide)"; then
        echo "OpenSlide: $found (whole slides: .svs, .ndpi, .mrxs, pyramidal TIFF, …)"
        return 0
      fi
    done
    echo "warning: libopenslide0 could not be installed: whole slides cannot be read (PNG/JPEG/TIFF images still can)" >&2
    return 0
  fi
  {
    echo "warning: OpenSlide not found: whole slides (.svs, .ndpi, .mrxs, …) cannot be read; PNG/JPEG/TIFF images can."
    if [[ "$os" == Darwin ]]; then
      echo "  install it with: brew install openslide"
    elif [[ "$os" == Linux ]]; then
      case "$(. /etc/os-release 2>/dev/null; echo " ${ID:-} ${ID_LIKE:-} ")" in
        *" fedora "* | *" rhel "* | *" centos "*) echo "  install it with: sudo dnf install openslide" ;;
        *" arch "*) echo "  install it with: sudo pacman -S openslide" ;;
        *" debian "* | *" ubuntu "*) echo "  install it with: sudo apt-get install libopenslide0 (libopenslide1 on newer releases)" ;;
        *) echo "  install OpenSlide (openslide.org), then export IVAAN_OPENSLIDE=/path/to/libopenslide.so.0 if it is not found" ;;
      esac
    else
      echo "  install OpenSlide (openslide.org), then export IVAAN_OPENSLIDE=/path/to/its/library"
    fi
    echo "  then run deno task setup again to check"
  } >&2
  return 0
}

# nginx whose `nginx -V` lists the WebDAV module; prints the path, fails when there is none.
find_nginx() {
  local candidate
  for candidate in "$(command -v nginx 2>/dev/null)" /usr/sbin/nginx /usr/local/sbin/nginx /usr/local/nginx/sbin/nginx; do
    if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" -V 2>&1 | grep -q -- --with-http_dav_module; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# nginx (the remote cache tests' server): found, installed (Debian's `nginx` has the WebDAV module), or what to run.
setup_nginx() {
  local found os
  if found="$(find_nginx)"; then
    echo "nginx: $found (with WebDAV: the cache server of tests/remote_cache_test.ts)"
    return 0
  fi
  if can_apt; then
    echo "installing nginx (its WebDAV module serves the remote cache in tests/remote_cache_test.ts)"
    if apt_install nginx && found="$(find_nginx)"; then
      echo "nginx: $found (with WebDAV; the tests start their own on loopback. Where a service manager runs, Debian" \
        "also starts its default site on port 80: systemctl disable --now nginx turns that off)"
      return 0
    fi
    echo "warning: nginx could not be installed: tests/remote_cache_test.ts will fail" >&2
    return 0
  fi
  os="$(uname -s)"
  {
    echo "warning: nginx with its WebDAV module not found: tests/remote_cache_test.ts fails without it (tasks do not need it)."
    if [[ "$os" == Darwin ]]; then
      echo "  install it with: brew install nginx"
    else
      echo "  install it with: sudo apt-get install nginx (Debian, Ubuntu; has the WebDAV module), or any nginx built"
      echo "  --with-http_dav_module on PATH"
    fi
    echo "  then run deno task setup again to check"
  } >&2
  return 0
}

# redis-server (the queue tests' Redis): found, installed (Debian's `redis-server`), or what to run.
find_redis() {
  local candidate
  for candidate in "$(command -v redis-server 2>/dev/null)" /usr/bin/redis-server /usr/local/bin/redis-server; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

setup_redis() {
  local found os
  if found="$(find_redis)"; then
    echo "redis-server: $found (the Redis of tests/queue_test.ts)"
    return 0
  fi
  if can_apt; then
    echo "installing redis-server (the work queue's Redis in tests/queue_test.ts)"
    if apt_install redis-server && found="$(find_redis)"; then
      echo "redis-server: $found (the tests start their own on loopback. Where a service manager runs, Debian also" \
        "starts one on 127.0.0.1:6379: systemctl disable --now redis-server turns that off)"
      return 0
    fi
    echo "warning: redis-server could not be installed: tests/queue_test.ts will fail" >&2
    return 0
  fi
  os="$(uname -s)"
  {
    echo "warning: redis-server not found: tests/queue_test.ts fails without it (tasks do not need it)."
    if [[ "$os" == Darwin ]]; then
      echo "  install it with: brew install redis"
    else
      echo "  install it with: sudo apt-get install redis-server (Debian, Ubuntu), or any redis-server ≥ 6.2 on PATH"
    fi
    echo "  then run deno task setup again to check"
  } >&2
  return 0
}

setup_blas
setup_openslide
setup_nginx
setup_redis
exit 0
