#!/bin/sh
#
# Install freevrrpd system-wide from this checkout (or an unpacked source
# distribution), with its service files.
#
#   sudo scripts/install-service.sh                  # or: make install-service
#   scripts/install-service.sh DESTDIR=/tmp/stage    # staged, e.g. for a package
#
# Settings (as NAME=value arguments or environment variables):
#   DESTDIR   staging root prepended to every path below       (empty)
#   PREFIX    programs, man pages and examples                  (/usr/local)
#   VENV      virtual environment holding the Python package    (/opt/freevrrpd)
#   UNITDIR   where the systemd unit goes                       (/etc/systemd/system)
#   PYTHON    interpreter for the virtual environment           (/usr/bin/python3)
#   PIP_ARGS  extra pip options, e.g. "--no-index --find-links DIR" (empty)
#
# Why a virtual environment: Debian's python3 refuses system-wide pip installs
# (PEP 668, "externally managed"), and a venv pins freevrrpd's dependencies
# (pyroute2, PyYAML, prometheus-client) apart from the distribution's packages.
# PYTHON must be the system interpreter, not one under /home or /root: the
# systemd unit runs with ProtectHome=yes, which hides those.
#
# What it installs (every path under DESTDIR):
#   VENV/                                   venv with freevrrpd (pip install)
#   PREFIX/sbin/freevrrpd                   symlink to VENV/bin/freevrrpd
#                                           (likewise freevrrpctl, when present)
#   UNITDIR/freevrrpd.service               systemd unit
#   /etc/init.d/freevrrpd                   SysV init script (LSB header)
#   PREFIX/share/freevrrpd/                 freevrrpd.conf.example, rc.d/freevrrpd,
#                                           hooks/{master,backup,fault,stop,record-state}.sh
#   PREFIX/share/man/man5/freevrrpd.conf.5, PREFIX/share/man/man8/*.8
#
# The service files name /usr/local/...; they are rewritten for another PREFIX.
# Nothing is enabled or started, and systemctl is not run: the script prints
# the commands for that.  No /etc/freevrrpd.conf is written: a live example
# would claim its addresses at the first start; the example is installed under
# PREFIX/share/freevrrpd and the script says how to start from it.  Running it
# again upgrades in place.

set -eu

for arg in "$@"; do
	case "$arg" in
	DESTDIR=* | PREFIX=* | VENV=* | UNITDIR=* | PYTHON=* | PIP_ARGS=*)
		export "${arg?}"
		;;
	-h | --help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*)
		echo "install-service.sh: unknown argument: $arg (see --help)" >&2
		exit 2
		;;
	esac
done

DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
VENV=${VENV:-/opt/freevrrpd}
UNITDIR=${UNITDIR:-/etc/systemd/system}
PYTHON=${PYTHON:-/usr/bin/python3}
PIP_ARGS=${PIP_ARGS:-}

SRC=$(cd "$(dirname "$0")/.." && pwd)

die() {
	echo "install-service.sh: $*" >&2
	exit 1
}

for dir in "$PREFIX" "$VENV" "$UNITDIR"; do
	case "$dir" in
	/*) ;;
	*) die "$dir: paths must be absolute" ;;
	esac
	case "$dir" in
	*'|'* | *' '*) die "$dir: no '|' or blanks in paths, please" ;;
	esac
done
[ -f "$SRC/setup.cfg" ] && [ -d "$SRC/freevrrpd" ] ||
	die "$SRC is neither a freevrrpd checkout nor an unpacked source distribution"
if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
	die "installing system-wide needs root (or set DESTDIR=... to stage the files)"
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
	die "$PYTHON is not Python 3.11 or newer (set PYTHON=...)"

say() { echo "==> $*"; }

# The service files and man pages name the default locations.
rewrite() {
	sed -e "s|/usr/local/sbin/freevrrp|$PREFIX/sbin/freevrrp|g" \
		-e "s|/usr/local/share/freevrrpd|$PREFIX/share/freevrrpd|g" "$1"
}

# install_file MODE SOURCE TARGET: copy with the paths rewritten.
install_file() {
	mkdir -p "$(dirname "$3")"
	rewrite "$2" > "$3.tmp"
	chmod "$1" "$3.tmp"
	mv -f "$3.tmp" "$3"
	echo "    $3"
}

# --- the Python package ------------------------------------------------------
venv=$DESTDIR$VENV
say "virtual environment $venv"
mkdir -p "$(dirname "$venv")"
"$PYTHON" -m venv "$venv"

# Build from a copy, so that the checkout gets no build/ or *.egg-info.
work=$(mktemp -d "${TMPDIR:-/tmp}/freevrrpd-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
(cd "$SRC" && tar -cf - --exclude=./.venv --exclude=./.git --exclude='./.*_cache' \
	--exclude=./.hypothesis --exclude=./build --exclude=./dist --exclude='*.egg-info' \
	--exclude=__pycache__ .) | tar -C "$work/src" -xf -
say "pip install freevrrpd into $venv"
# shellcheck disable=SC2086 # PIP_ARGS is a list of options
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
	--upgrade $PIP_ARGS "$work/src"

if [ -n "$DESTDIR" ]; then
	# The venv was made at DESTDIR/VENV but will run at VENV: fix the paths
	# that venv and pip wrote into it (#! lines, activate scripts, pyvenv.cfg).
	for f in "$venv"/bin/* "$venv/pyvenv.cfg"; do
		[ -f "$f" ] && [ ! -L "$f" ] || continue
		grep -Iq . "$f" 2>/dev/null || continue  # text files only
		if grep -Fq "$venv" "$f"; then
			sed "s|$venv|$VENV|g" "$f" > "$f.tmp" && cat "$f.tmp" > "$f" && rm -f "$f.tmp"
		fi
	done
fi
# Byte-compile with the final paths (tracebacks name VENV, not DESTDIR); -f
# also redoes what venv's own pip and setuptools were compiled with.
force=""
[ -z "$DESTDIR" ] || force=-f
"$venv/bin/python" -m compileall -q $force -s "$venv" -p "$VENV" "$venv/lib" >/dev/null

say "programs in $DESTDIR$PREFIX/sbin"
mkdir -p "$DESTDIR$PREFIX/sbin"
for prog in freevrrpd freevrrpctl; do
	if [ -e "$venv/bin/$prog" ]; then
		ln -sfn "$VENV/bin/$prog" "$DESTDIR$PREFIX/sbin/$prog"
		echo "    $DESTDIR$PREFIX/sbin/$prog -> $VENV/bin/$prog"
	fi
done

# --- service files -------------------------------------------------------------
say "service files"
install_file 644 "$SRC/scripts/freevrrpd.service" "$DESTDIR$UNITDIR/freevrrpd.service"
install_file 755 "$SRC/scripts/init.d/freevrrpd" "$DESTDIR/etc/init.d/freevrrpd"
share=$DESTDIR$PREFIX/share/freevrrpd
install_file 755 "$SRC/scripts/rc.d/freevrrpd" "$share/rc.d/freevrrpd"
for hook in "$SRC"/scripts/hooks/*.sh; do
	install_file 755 "$hook" "$share/hooks/$(basename "$hook")"
done
install_file 644 "$SRC/conf/freevrrpd.conf.example" "$share/freevrrpd.conf.example"

# --- man pages -----------------------------------------------------------------
say "man pages"
for page in "$SRC"/man/*.[1-9]; do
	[ -e "$page" ] || continue
	section=${page##*.}
	install_file 644 "$page" "$DESTDIR$PREFIX/share/man/man$section/$(basename "$page")"
done

cat <<EOF

freevrrpd is installed. Next steps:
  write /etc/freevrrpd.conf (0640: it may hold VRRPv2 passwords), starting from
    $PREFIX/share/freevrrpd/freevrrpd.conf.example
  check it:      $PREFIX/sbin/freevrrpd -t
  with systemd:  systemctl daemon-reload && systemctl enable --now freevrrpd
  with SysV:     update-rc.d freevrrpd defaults && /etc/init.d/freevrrpd start
EOF
