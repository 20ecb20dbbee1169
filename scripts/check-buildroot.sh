#!/usr/bin/env bash
# Checks the Buildroot br2-external tree (buildroot/) and the service files (packaging/) as far
# as is possible without Buildroot itself, which this machine cannot download:
#
#   a) the files exist;
#   b) the shell scripts pass `sh -n` (and shellcheck, when installed);
#   c) every Config.in parses with kconfiglib under a stand-in top-level Kconfig that defines the
#      Buildroot symbols they use, and each defconfig (and a few made-up configurations) gives
#      our symbols the values they must have;
#   d) the .mk files define what Buildroot needs, parse with make against stand-ins for
#      Buildroot's package macros, and their install commands, run into a scratch target
#      directory, put the files where the binary looks for them; the onnxruntime-bin wheel
#      (from PyPI, cached) matches the .hash file and its library installs;
#   e) `systemd-analyze verify` accepts packaging/argus.service;
#   f) packaging/argus.toml is TOML and uses only keys that src/config.rs (and the sections it
#      re-exports from src/detect/service.rs) defines.
#
# Needs python3, make, unzip, systemd-analyze (the Debian package systemd) and PyPI for kconfiglib
# and the wheel (both cached in target/buildroot-check/). ARGUS_BIN: a real argus binary for the
# ExecStart= check (default /bin/true, since systemd-analyze verify needs an executable there).
#
#   scripts/check-buildroot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$ROOT/target/buildroot-check
BR=$ROOT/buildroot
mkdir -p "$WORK"
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

checks=0
ok() { checks=$((checks + 1)); echo "  ok: $*"; }
die() { echo "buildroot check: FAILED: $*" >&2; exit 1; }
section() { echo "buildroot check: $*"; }

# ---------------------------------------------------------------------------------------------
section "a) files"
FILES=(
  packaging/argus.service packaging/argus.toml packaging/S99argus
  buildroot/external.desc buildroot/Config.in buildroot/external.mk buildroot/README.md
  buildroot/package/argus/Config.in buildroot/package/argus/argus.mk
  buildroot/package/onnxruntime-bin/Config.in buildroot/package/onnxruntime-bin/onnxruntime-bin.mk
  buildroot/package/onnxruntime-bin/onnxruntime-bin.hash
  buildroot/configs/argus_raspberrypi4_64_defconfig buildroot/configs/argus_raspberrypi5_defconfig
)
for f in "${FILES[@]}"; do
  [ -s "$f" ] || die "$f is missing or empty"
done
[ -x packaging/S99argus ] || die "packaging/S99argus is not executable (chmod 0755)"
grep -qx 'name: ARGUS' buildroot/external.desc || die "buildroot/external.desc: no 'name: ARGUS'"
ok "${#FILES[@]} files present, S99argus executable, external.desc names ARGUS"

# ---------------------------------------------------------------------------------------------
section "b) shell scripts"
mapfile -t SCRIPTS < <({ echo packaging/S99argus; find buildroot -type f -name '*.sh'; } | sort -u)
for s in "${SCRIPTS[@]}"; do
  sh -n "$s" || die "$s: sh -n failed"
done
bash -n scripts/check-buildroot.sh || die "scripts/check-buildroot.sh: bash -n failed"
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck -s sh "${SCRIPTS[@]}" || die "shellcheck found problems (above)"
  shellcheck scripts/check-buildroot.sh || die "shellcheck found problems in this script (above)"
  ok "sh -n and shellcheck -s sh: ${SCRIPTS[*]}; shellcheck: scripts/check-buildroot.sh"
else
  ok "sh -n: ${SCRIPTS[*]} (shellcheck not installed: apt-get install shellcheck)"
fi

# ---------------------------------------------------------------------------------------------
section "c) Kconfig (kconfiglib)"
VENV=$WORK/venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import kconfiglib' 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check kconfiglib==14.1.0
fi

# Stand-ins for the Buildroot symbols our Config.in files use, with Buildroot's meaning (see
# buildroot/README.md, "What was checked against Buildroot"). Real Buildroot has many more; a
# defconfig line naming one of those is ignored here.
cat > "$SCRATCH/Kconfig" <<'EOF'
mainmenu "Buildroot stand-in"

choice
	prompt "Target Architecture"
config BR2_aarch64
	bool "AArch64 (little endian)"
config BR2_arm
	bool "ARM (little endian)"
config BR2_x86_64
	bool "x86_64"
endchoice

config BR2_USE_MMU
	bool
	default y

choice
	prompt "Toolchain type"
config BR2_TOOLCHAIN_BUILDROOT
	bool "Buildroot toolchain"
config BR2_TOOLCHAIN_EXTERNAL
	bool "External toolchain"
endchoice

choice
	prompt "C library"
	depends on BR2_TOOLCHAIN_BUILDROOT
config BR2_TOOLCHAIN_BUILDROOT_UCLIBC
	bool "uClibc-ng"
	select BR2_TOOLCHAIN_HAS_THREADS
config BR2_TOOLCHAIN_BUILDROOT_GLIBC
	bool "glibc"
	select BR2_TOOLCHAIN_USES_GLIBC
config BR2_TOOLCHAIN_BUILDROOT_MUSL
	bool "musl"
	select BR2_TOOLCHAIN_USES_MUSL
endchoice

config BR2_TOOLCHAIN_BUILDROOT_CXX
	bool "Enable C++ support"
	depends on BR2_TOOLCHAIN_BUILDROOT
	select BR2_INSTALL_LIBSTDCPP

config BR2_TOOLCHAIN_USES_GLIBC
	bool
	select BR2_TOOLCHAIN_HAS_THREADS
config BR2_TOOLCHAIN_USES_MUSL
	bool
	select BR2_TOOLCHAIN_HAS_THREADS
config BR2_TOOLCHAIN_HAS_THREADS
	bool
config BR2_INSTALL_LIBSTDCPP
	bool
config BR2_TOOLCHAIN_GCC_AT_LEAST_6
	bool
	default y

# package/rustc/Config.in.host, reduced to the targets that matter here.
config BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS
	bool
	default y if BR2_aarch64 && (BR2_TOOLCHAIN_USES_GLIBC || BR2_TOOLCHAIN_USES_MUSL)
	default y if BR2_arm && (BR2_TOOLCHAIN_USES_GLIBC || BR2_TOOLCHAIN_USES_MUSL)
	default y if BR2_x86_64 && (BR2_TOOLCHAIN_USES_GLIBC || BR2_TOOLCHAIN_USES_MUSL)
	depends on BR2_INSTALL_LIBSTDCPP || !BR2_TOOLCHAIN_USES_MUSL
config BR2_PACKAGE_HOST_RUSTC
	bool "host rustc"

# package/llvm/Config.in
config BR2_PACKAGE_LLVM_ARCH_SUPPORTS
	bool
	default y if BR2_aarch64 || BR2_arm || BR2_x86_64

choice
	prompt "Init system"
config BR2_INIT_BUSYBOX
	bool "BusyBox"
config BR2_INIT_SYSTEMD
	bool "systemd"
	depends on BR2_TOOLCHAIN_USES_GLIBC
endchoice

menu "External options"
source "$BR2_EXTERNAL_ARGUS_PATH/Config.in"
endmenu
EOF

cat > "$SCRATCH/kcheck.py" <<'EOF'
import os, re, sys
os.environ["KCONFIG_WARN_UNDEF"] = "y"
os.environ["CONFIG_"] = ""  # Buildroot: symbols carry BR2_ themselves, .config lines have no prefix
import kconfiglib

stub, br = sys.argv[1], sys.argv[2]
ours = ("BR2_PACKAGE_ARGUS", "BR2_PACKAGE_ONNXRUNTIME_BIN")
failures = []

kconf = kconfiglib.Kconfig(stub, warn_to_stderr=False)
kconf.warn_assign_undef = True
for w in kconf.warnings:
    # At parse time every warning is about our files (the stand-in is known to be clean).
    failures.append("kconfiglib: " + w)
for name in ("BR2_PACKAGE_ARGUS", "BR2_PACKAGE_ARGUS_ONNXRUNTIME", "BR2_PACKAGE_ONNXRUNTIME_BIN",
             "BR2_PACKAGE_ONNXRUNTIME_BIN_ARCH_SUPPORTS"):
    if name not in kconf.syms or not kconf.syms[name].nodes:
        failures.append(f"{name} is not defined by buildroot/Config.in")

def load(path):
    del kconf.warnings[:]
    kconf.load_config(path, replace=True)
    assigned = {}
    for line in open(path):
        m = re.match(r"^(BR2_\w+)=(.*)$", line.strip())
        if m:
            assigned[m.group(1)] = m.group(2).strip('"')
        m = re.match(r"^# (BR2_\w+) is not set$", line.strip())
        if m:
            assigned[m.group(1)] = "n"
    for w in kconf.warnings:
        # Symbols the stand-in does not model are fine; anything about our symbols is not.
        if "undefined symbol" in w and not any(o in w for o in ours):
            continue
        failures.append(f"{os.path.basename(path)}: {w}")
    # Every value the file sets on a modelled symbol must stick (unmet dependencies drop it).
    for name, val in assigned.items():
        sym = kconf.syms.get(name)
        if sym is None or not sym.nodes or sym.type not in (kconfiglib.BOOL, kconfiglib.TRISTATE):
            continue
        if sym.str_value != val:
            failures.append(f"{os.path.basename(path)}: {name}={val} does not stick "
                            f"(got {sym.str_value}; unmet dependencies?)")

def expect(label, want):
    for name, val in want.items():
        got = kconf.syms[name].str_value
        if got != val:
            failures.append(f"{label}: {name} is {got}, expected {val}")

n = 0
for f in ("argus_raspberrypi4_64_defconfig", "argus_raspberrypi5_defconfig"):
    load(os.path.join(br, "configs", f))
    expect(f, {"BR2_PACKAGE_ARGUS": "y", "BR2_PACKAGE_ARGUS_ONNXRUNTIME": "y",
               "BR2_PACKAGE_ONNXRUNTIME_BIN": "y", "BR2_PACKAGE_HOST_RUSTC": "y",
               "BR2_INIT_SYSTEMD": "y", "BR2_TOOLCHAIN_USES_GLIBC": "y",
               "BR2_INSTALL_LIBSTDCPP": "y"})
    n += 1

# Made-up configurations: what must be possible, and what must not.
cases = [
    ("armv7 glibc C++: argus with tract, no ONNX Runtime",
     "BR2_arm=y\nBR2_TOOLCHAIN_BUILDROOT_GLIBC=y\nBR2_TOOLCHAIN_BUILDROOT_CXX=y\n"
     "BR2_PACKAGE_ARGUS=y\nBR2_PACKAGE_ONNXRUNTIME_BIN=y\n",
     {"BR2_PACKAGE_ARGUS": "y", "BR2_PACKAGE_ARGUS_ONNXRUNTIME": "n",
      "BR2_PACKAGE_ONNXRUNTIME_BIN": "n", "BR2_PACKAGE_HOST_RUSTC": "y"}),
    ("aarch64 musl C++: no argus (glibc only)",
     "BR2_aarch64=y\nBR2_TOOLCHAIN_BUILDROOT_MUSL=y\nBR2_TOOLCHAIN_BUILDROOT_CXX=y\n"
     "BR2_PACKAGE_ARGUS=y\nBR2_PACKAGE_ONNXRUNTIME_BIN=y\n",
     {"BR2_PACKAGE_ARGUS": "n", "BR2_PACKAGE_ONNXRUNTIME_BIN": "n"}),
    ("aarch64 glibc without C++: neither package",
     "BR2_aarch64=y\nBR2_TOOLCHAIN_BUILDROOT_GLIBC=y\n"
     "BR2_PACKAGE_ARGUS=y\nBR2_PACKAGE_ONNXRUNTIME_BIN=y\n",
     {"BR2_PACKAGE_ARGUS": "n", "BR2_PACKAGE_ONNXRUNTIME_BIN": "n"}),
    ("aarch64 glibc C++, ONNX Runtime option off",
     "BR2_aarch64=y\nBR2_TOOLCHAIN_BUILDROOT_GLIBC=y\nBR2_TOOLCHAIN_BUILDROOT_CXX=y\n"
     "BR2_PACKAGE_ARGUS=y\n# BR2_PACKAGE_ARGUS_ONNXRUNTIME is not set\n",
     {"BR2_PACKAGE_ARGUS": "y", "BR2_PACKAGE_ONNXRUNTIME_BIN": "n"}),
]
for label, text, want in cases:
    path = os.path.join(os.path.dirname(stub), "case.config")
    open(path, "w").write(text)
    kconf.load_config(path, replace=True)
    expect(label, want)
    n += 1

# The "unmet dependencies" comments show exactly when they should.
def comment_visible(prefix):
    for node in kconf.node_iter():
        if node.item == kconfiglib.COMMENT and node.prompt[0].startswith(prefix):
            return kconfiglib.expr_value(node.prompt[1]) > 0
    failures.append(f"no comment starting with {prefix!r}")
    return None
open(os.path.join(os.path.dirname(stub), "case.config"), "w").write(
    "BR2_aarch64=y\nBR2_TOOLCHAIN_BUILDROOT_MUSL=y\nBR2_TOOLCHAIN_BUILDROOT_CXX=y\n")
kconf.load_config(os.path.join(os.path.dirname(stub), "case.config"), replace=True)
if comment_visible("argus needs") is False:
    failures.append("musl: the 'argus needs ...' comment is hidden")
if comment_visible("onnxruntime-bin needs") is False:
    failures.append("musl: the 'onnxruntime-bin needs ...' comment is hidden")
open(os.path.join(os.path.dirname(stub), "case.config"), "w").write(
    "BR2_aarch64=y\nBR2_TOOLCHAIN_BUILDROOT_GLIBC=y\nBR2_TOOLCHAIN_BUILDROOT_CXX=y\n")
kconf.load_config(os.path.join(os.path.dirname(stub), "case.config"), replace=True)
if comment_visible("argus needs") is True:
    failures.append("glibc C++: the 'argus needs ...' comment shows although nothing is missing")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"{n} configurations")
EOF
kout=$(BR2_EXTERNAL_ARGUS_PATH=$BR "$VENV/bin/python" "$SCRATCH/kcheck.py" "$SCRATCH/Kconfig" "$BR") ||
  die "Kconfig: $kout"
ok "Config.in files parse without warnings; 2 defconfigs and made-up configurations give the expected values (${kout})"

for d in buildroot/configs/argus_*_defconfig; do
  grep -q '^# --- Argus Edge additions' "$d" || die "$d: the '# --- Argus Edge additions' marker is gone"
  grep -q '^# NOT BUILT HERE' "$d" || die "$d: the 'NOT BUILT HERE' note is gone"
done
ok "defconfigs keep the additions marker and the not-built note"

# ---------------------------------------------------------------------------------------------
section "d) package makefiles"
for pkg in argus onnxruntime-bin; do
  mk=buildroot/package/$pkg/$pkg.mk
  P=$(echo "$pkg" | tr 'a-z-' 'A-Z_')
  for v in VERSION SITE LICENSE LICENSE_FILES; do
    grep -Eq "^${P}_${v} *[+:]?=" "$mk" || die "$mk: ${P}_${v} is not set"
  done
  last=$(grep -v '^[[:space:]]*$' "$mk" | tail -n1)
  # shellcheck disable=SC2016 # make syntax, not shell
  case $pkg in
    argus) want='$(eval $(cargo-package))' ;;
    *) want='$(eval $(generic-package))' ;;
  esac
  [ "$last" = "$want" ] || die "$mk: last line is '$last', expected '$want'"
  head -n5 "$mk" | grep -qx "# $pkg" || die "$mk: the banner does not name $pkg"
done
ok "argus.mk and onnxruntime-bin.mk set VERSION, SITE, LICENSE, LICENSE_FILES and end with the right \$(eval ...)"

cargo_version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
mk_version=$(sed -n 's/^ARGUS_VERSION *= *//p' buildroot/package/argus/argus.mk)
[ "$cargo_version" = "$mk_version" ] || die "ARGUS_VERSION $mk_version != Cargo.toml version $cargo_version"
# shellcheck disable=SC2016 # a literal ${...} in the script
ort_script=$(sed -n 's/^VERSION="\${ORT_VERSION:-\(.*\)}"/\1/p' scripts/fetch-onnxruntime.sh)
ort_mk=$(sed -n 's/^ONNXRUNTIME_BIN_VERSION *= *//p' buildroot/package/onnxruntime-bin/onnxruntime-bin.mk)
[ "$ort_script" = "$ort_mk" ] || die "ONNXRUNTIME_BIN_VERSION $ort_mk != scripts/fetch-onnxruntime.sh's $ort_script"
ok "ARGUS_VERSION = Cargo.toml ($cargo_version); ONNXRUNTIME_BIN_VERSION = fetch-onnxruntime.sh ($ort_mk)"
# ARGUS_LICENSE_FILES name files of this checkout (continuation lines included).
lic=$(sed -n '/^ARGUS_LICENSE_FILES *=/,/[^\\]$/p' buildroot/package/argus/argus.mk |
  sed -e 's/^ARGUS_LICENSE_FILES *= *//' -e 's/\\$//')
nlic=0
for lf in $lic; do
  [ -f "$lf" ] || die "ARGUS_LICENSE_FILES names $lf, which is not in the checkout"
  nlic=$((nlic + 1))
done
[ "$nlic" -ge 1 ] || die "could not read ARGUS_LICENSE_FILES"
ok "the $nlic ARGUS_LICENSE_FILES exist in the checkout"

# Stand-ins for Buildroot's package macros and variables: enough for make to parse our files,
# expand every variable and run the install commands into a scratch tree.
cat > "$SCRATCH/stub.mk" <<'EOF'
pkg-of = $(notdir $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST)))))
cargo-package = CARGO_PACKAGES += $(pkg-of)
generic-package = GENERIC_PACKAGES += $(pkg-of)
INSTALL = install
UNZIP = unzip -q
RUSTC_TARGET_NAME = aarch64-unknown-linux-gnu
include $(BR2_EXTERNAL_ARGUS_PATH)/external.mk
.PHONY: print FORCE
print:
	@echo 'cargo=$(CARGO_PACKAGES) generic=$(GENERIC_PACKAGES)'
	@echo 'ort-url=$(ONNXRUNTIME_BIN_SITE)/$(ONNXRUNTIME_BIN_SOURCE)'
	@echo 'argus-site=$(ARGUS_SITE) method=$(ARGUS_SITE_METHOD)'
	@echo 'argus-deps=$(ARGUS_DEPENDENCIES)'
	@echo 'argus-hooks=$(ARGUS_PRE_BUILD_HOOKS)'
	@echo 'argus-build-opts=$(ARGUS_CARGO_BUILD_OPTS)'
	@echo 'argus-cargo-env=$(ARGUS_CARGO_ENV)'
	@printf '%s\n' 'users=$(strip $(ARGUS_USERS))'
	@printf '%s\n' 'perms=$(strip $(ARGUS_PERMISSIONS))'
%/.run: FORCE
	$($(CMD))
EOF
mk() { make --no-print-directory -f "$SCRATCH/stub.mk" BR2_EXTERNAL_ARGUS_PATH="$BR" "$@"; }
info=$(mk print) || die "make could not parse buildroot/external.mk and the package .mk files"
grep -qx 'cargo=argus generic=onnxruntime-bin' <<<"$info" ||
  die "the packages are not declared as expected: $(head -n1 <<<"$info")"
grep -qx "argus-site=$BR/.. method=local" <<<"$info" || die "ARGUS_SITE is not the checkout: $info"
grep -q '^argus-deps=.*host-clang' <<<"$info" || die "ARGUS_DEPENDENCIES lacks host-clang"
grep -q '^argus-build-opts=--bin argus$' <<<"$info" || die "ARGUS_CARGO_BUILD_OPTS is not --bin argus"
grep -q "^argus-cargo-env=LIBCLANG_PATH=/lib BINDGEN_EXTRA_CLANG_ARGS=\"--sysroot=\"" <<<"$info" ||
  die "ARGUS_CARGO_ENV does not set LIBCLANG_PATH and BINDGEN_EXTRA_CLANG_ARGS: $(grep cargo-env <<<"$info")"
for h in ARGUS_CHECK_MODEL ARGUS_CHECK_RUSTC ARGUS_VENDOR_CRATES; do
  grep -q "^argus-hooks=.*$h" <<<"$info" || die "$h is not in ARGUS_PRE_BUILD_HOOKS"
done
# makeusers: username uid group gid password home shell groups comment...
users=$(sed -n 's/^users=//p' <<<"$info")
read -r -a u <<<"$users"
if ! { [ "${#u[@]}" -ge 9 ] && [ "${u[0]}" = argus ] && [ "${u[1]}" = -1 ] && [ "${u[2]}" = argus ] &&
  [ "${u[5]}" = /var/lib/argus ] && [ "${u[7]}" = video ]; }; then
  die "ARGUS_USERS is not 'argus -1 argus -1 * /var/lib/argus - video comment': $users"
fi
# makedevs: name type mode uid gid major minor start inc count
perms=$(sed -n 's/^perms=//p' <<<"$info")
read -r -a p <<<"$perms"
if ! { [ "${#p[@]}" -eq 10 ] && [ "${p[0]}" = /var/lib/argus ] && [ "${p[1]}" = d ] &&
  [ "${p[2]}" = 0700 ] && [ "${p[3]}" = argus ]; }; then
  die "ARGUS_PERMISSIONS is not a 10-field makedevs line for /var/lib/argus: $perms"
fi
ok "make parses the tree: argus is a cargo-package, onnxruntime-bin a generic-package; hooks, users and permissions well-formed"

# argus: the install commands, run into a scratch target directory from a scratch build
# directory laid out like Buildroot's (the checkout's files, a stand-in binary, and a stand-in
# model when models/ has none).
B=$SCRATCH/build/argus-$mk_version
T=$SCRATCH/target
mkdir -p "$B/target/aarch64-unknown-linux-gnu/release" "$B/models" "$B/packaging" "$T"
cp packaging/argus.service packaging/argus.toml packaging/S99argus "$B/packaging/"
cp models/*.toml models/coco.names models/MODELS.md models/*.sha256 "$B/models/"
printf '#!/bin/sh\n' > "$B/target/aarch64-unknown-linux-gnu/release/argus"
cp Cargo.toml "$B/"
# The missing-model case first: it must stop with the make-model.sh hint.
if out=$(mk CMD=ARGUS_INSTALL_TARGET_CMDS TARGET_DIR="$T" "$B/.run" 2>&1); then
  die "ARGUS_INSTALL_TARGET_CMDS succeeded without the models"
fi
grep -q 'scripts/make-model.sh' <<<"$out" || die "the missing-model failure does not name scripts/make-model.sh: $out"
if out=$(mk CMD=ARGUS_CHECK_MODEL "$B/.run" 2>&1); then
  die "ARGUS_CHECK_MODEL succeeded without the models"
fi
grep -q 'scripts/make-model.sh' <<<"$out" || die "ARGUS_CHECK_MODEL's failure does not name scripts/make-model.sh: $out"
MODELS=(yolov4-tiny-416-int8 yolov4-tiny-416)
if [ -f models/yolov4-tiny-416-int8.onnx ] && [ -f models/yolov4-tiny-416.onnx ]; then
  for m in "${MODELS[@]}"; do ln -s "$ROOT/models/$m.onnx" "$B/models/$m.onnx"; done
  mk CMD=ARGUS_CHECK_MODEL "$B/.run" >/dev/null 2>&1 ||
    die "ARGUS_CHECK_MODEL rejects the models (sha256 differs from models/*.sha256?)"
  model_note="the real models pass ARGUS_CHECK_MODEL's sha256 check"
else
  for m in "${MODELS[@]}"; do echo "stand-in" > "$B/models/$m.onnx"; done
  model_note="no models/yolov4-tiny-416{,-int8}.onnx here (scripts/make-model.sh), stand-ins were installed"
fi
for c in ARGUS_INSTALL_TARGET_CMDS ARGUS_INSTALL_INIT_SYSTEMD ARGUS_INSTALL_INIT_SYSV; do
  mk CMD=$c TARGET_DIR="$T" "$B/.run" >/dev/null || die "$c failed"
done
for f in usr/bin/argus usr/share/argus/models/yolov4-tiny-416-int8.toml usr/share/argus/models/yolov4-tiny-416-int8.onnx \
  usr/share/argus/models/yolov4-tiny-416.toml usr/share/argus/models/yolov4-tiny-416.onnx \
  usr/share/argus/models/coco.names etc/argus/argus.toml usr/lib/systemd/system/argus.service etc/init.d/S99argus; do
  [ -f "$T/$f" ] || die "the install commands did not install /$f"
done
for f in usr/bin/argus etc/init.d/S99argus; do
  [ -x "$T/$f" ] || die "/$f is not executable"
done
# The model descriptions name their files relative to themselves: they must sit beside them.
for m in "${MODELS[@]}"; do
  while read -r ref; do
    [ -f "$T/usr/share/argus/models/$ref" ] || die "$m.toml names $ref, which is not installed beside it"
  done < <(sed -n 's/^\(file\|labels\) *= *"\(.*\)"/\2/p' "models/$m.toml")
done
# The paths the binary searches by default (src/detect/service.rs) are the installed ones.
grep -q '"/usr/share/argus/models"' src/detect/service.rs || die "src/detect/service.rs no longer searches /usr/share/argus/models"
grep -q '"/usr/lib/argus/libonnxruntime.so"' src/detect/service.rs || die "src/detect/service.rs no longer searches /usr/lib/argus/libonnxruntime.so"
ok "argus install commands: binary, model (+ files it names), config, unit, init script in place ($model_note); a missing model stops with the make-model.sh hint"

# The Rust version check, against stand-in rustc binaries older and newer than rust-version.
need=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml)
mkdir -p "$SCRATCH/host-old/bin" "$SCRATCH/host-new/bin"
printf '#!/bin/sh\necho "rustc 1.84.1 (e71f9a9a9 2025-01-27)"\n' > "$SCRATCH/host-old/bin/rustc"
printf '#!/bin/sh\necho "rustc 9.99.0 (000000000 2099-01-01)"\n' > "$SCRATCH/host-new/bin/rustc"
chmod +x "$SCRATCH"/host-*/bin/rustc
mk CMD=ARGUS_CHECK_RUSTC HOST_DIR="$SCRATCH/host-new" "$B/.run" >/dev/null 2>&1 ||
  die "ARGUS_CHECK_RUSTC rejects a new enough rustc"
if out=$(mk CMD=ARGUS_CHECK_RUSTC HOST_DIR="$SCRATCH/host-old" "$B/.run" 2>&1); then
  die "ARGUS_CHECK_RUSTC accepts rustc 1.84.1 although Cargo.toml needs $need"
fi
grep -q "needs Rust >= $need" <<<"$out" || die "ARGUS_CHECK_RUSTC's message is unclear: $out"
ok "ARGUS_CHECK_RUSTC accepts a newer rustc and refuses 1.84.1 (Cargo.toml rust-version $need)"

# onnxruntime-bin: the wheel from PyPI must match the .hash file, extract with the package's
# commands, and install the library where argus looks for it.
HASH=buildroot/package/onnxruntime-bin/onnxruntime-bin.hash
url=$(sed -n 's/^ort-url=//p' <<<"$info")
whl=${url##*/}
grep -Eq "^sha256 +[0-9a-f]{64} +$whl\$" "$HASH" || die "$HASH has no sha256 line for $whl"
want=$(awk -v f="$whl" '$1 == "sha256" && $3 == f { print $2 }' "$HASH")
DL=$WORK/dl
mkdir -p "$DL"
if [ ! -f "$DL/$whl" ] || [ "$(sha256sum "$DL/$whl" | cut -d' ' -f1)" != "$want" ]; then
  rm -f "$DL/$whl"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_aarch64 "onnxruntime==$ort_mk" -d "$DL" >/dev/null ||
    die "could not download $whl from PyPI"
fi
[ -f "$DL/$whl" ] || die "pip downloaded another file than $whl (the .mk's file name is wrong?)"
got=$(sha256sum "$DL/$whl" | cut -d' ' -f1)
[ "$got" = "$want" ] || die "$whl: sha256 $got, $HASH says $want"
OB=$SCRATCH/build/onnxruntime-bin-$ort_mk
mkdir -p "$OB"
mk CMD=ONNXRUNTIME_BIN_EXTRACT_CMDS ONNXRUNTIME_BIN_DL_DIR="$DL" "$OB/.run" >/dev/null ||
  die "ONNXRUNTIME_BIN_EXTRACT_CMDS failed"
mk CMD=ONNXRUNTIME_BIN_INSTALL_TARGET_CMDS TARGET_DIR="$T" "$OB/.run" >/dev/null ||
  die "ONNXRUNTIME_BIN_INSTALL_TARGET_CMDS failed"
lib=$T/usr/lib/argus/libonnxruntime.so
[ -f "$lib" ] || die "onnxruntime-bin did not install /usr/lib/argus/libonnxruntime.so"
file "$lib" 2>/dev/null | grep -q 'ARM aarch64' || od -An -tx1 -j18 -N2 "$lib" | grep -q 'b7 00' ||
  die "/usr/lib/argus/libonnxruntime.so is not an aarch64 ELF file"
lic_files=$(sed -n 's/^ONNXRUNTIME_BIN_LICENSE_FILES *= *//p' buildroot/package/onnxruntime-bin/onnxruntime-bin.mk)
for lf in $lic_files; do
  lw=$(awk -v f="$lf" '$1 == "sha256" && $3 == f { print $2 }' "$HASH")
  [ -n "$lw" ] || die "$HASH has no sha256 for the licence file $lf"
  [ "$(sha256sum "$OB/$lf" | cut -d' ' -f1)" = "$lw" ] || die "$lf: sha256 differs from $HASH"
done
ok "onnxruntime-bin: $whl matches the .hash file, extracts, installs an aarch64 /usr/lib/argus/libonnxruntime.so; licence file hashes match"

# ---------------------------------------------------------------------------------------------
section "e) systemd unit"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q systemd >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q systemd >/dev/null 2>&1; } || true
  fi
  command -v systemd-analyze >/dev/null 2>&1 || die "systemd-analyze is missing (apt-get install systemd)"
fi
UNIT=packaging/argus.service
grep -qx 'ExecStart=/usr/bin/argus --config /etc/argus/argus.toml serve' "$UNIT" ||
  die "$UNIT: ExecStart is not '/usr/bin/argus --config /etc/argus/argus.toml serve'"
for kv in Type=notify NotifyAccess=main WatchdogSec=30 User=argus StateDirectory=argus \
  Environment=ARGUS_DATA_DIR=/var/lib/argus WantedBy=multi-user.target; do
  grep -qx "$kv" "$UNIT" || die "$UNIT: no line '$kv'"
done
# verify needs ExecStart's binary to exist: point it at $ARGUS_BIN, else /bin/true (the unit
# name stays argus.service).
exe=${ARGUS_BIN:-/bin/true}
# systemd wants an absolute path; test.sh passes target/debug/argus.
[[ "$exe" = /* ]] || exe="$(realpath "$exe")"
[ -x "$exe" ] || die "ARGUS_BIN=$exe is not an executable"
mkdir -p "$SCRATCH/unit"
sed "s#^ExecStart=/usr/bin/argus #ExecStart=$exe #" "$UNIT" > "$SCRATCH/unit/argus.service"
out=$(cd "$SCRATCH/unit" && systemd-analyze verify ./argus.service 2>&1) || true
bad=$(grep 'argus.service' <<<"$out" || true)
[ -z "$bad" ] || die "systemd-analyze verify: $bad"
ok "systemd-analyze verify: no complaint about argus.service (ExecStart binary: $exe)"

# ---------------------------------------------------------------------------------------------
section "f) default configuration"
python3 - packaging/argus.toml src/config.rs src/detect/service.rs <<'EOF' || die "packaging/argus.toml: see above"
import re, sys, tomllib
cfg = tomllib.load(open(sys.argv[1], "rb"))
# src/config.rs re-exports the sections that live beside their subsystem.
src = "\n".join(open(f).read() for f in sys.argv[2:])
# struct name -> its `pub <key>:` fields, for the file's top level and its sections.
def fields(struct):
    m = re.search(r"pub struct %s \{(.*?)\n\}" % struct, src, re.S)
    if not m:
        sys.exit(f"{', '.join(sys.argv[2:])}: no struct {struct}")
    return set(re.findall(r"^\s*pub (\w+):", m.group(1), re.M))
top = fields("FileConfig")
sections = {"http": "HttpSection", "tls": "TlsSection", "auth": "AuthSection",
            "detector": "DetectorSection", "protect": "ProtectSection"}
bad = []
for k, v in cfg.items():
    if k not in top:
        bad.append(k)
    elif isinstance(v, dict):
        known = fields(sections[k])
        bad += [f"{k}.{kk}" for kk in v if kk not in known]
if bad:
    sys.exit("keys not in src/config.rs: " + ", ".join(bad))
if cfg.get("detector", {}).get("on_error") not in (None, "fail", "motion-only"):
    sys.exit("detector.on_error must be fail or motion-only")
if cfg.get("data_dir") != "/var/lib/argus" or cfg.get("listen") != "0.0.0.0:8000":
    sys.exit("data_dir must be /var/lib/argus and listen 0.0.0.0:8000")
EOF
ok "packaging/argus.toml is TOML and uses only keys defined in src/config.rs"

echo "buildroot check: ok ($checks checks)"
