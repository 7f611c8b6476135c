# freevrrpd — every set-up step lives here, so a fresh Debian machine needs only
# `make demo` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSSTAMP := $(VENV)/.system-deps
# Debian packages the tests and the lab use: real peers and packet dissection.
DEB_PACKAGES := iproute2 nftables keepalived frr tshark tcpdump procps iputils-ping python3-venv man-db groff-base
# Debian's own tools for make deb (lintian for its test).
DEB_BUILD_PACKAGES := debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools \
  dpkg-dev fakeroot lintian
DEBSTAMP := $(VENV)/.deb-build-deps
DEBDIR := build/deb

.PHONY: all install system-deps deb-deps deb lint test unit demo bench clean distclean install-service

all: install

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# compat mode: a plain path in a .pth file.  The default mode installs an
	# import hook that every Python start of the venv loads (30-40 ms here),
	# which start-up measurements would count against the daemon.
	$(PY) -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat \
	  || $(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

# Installs the Debian packages of the list $(1) that are missing (needs root, as the lab does).
define apt_install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

$(SYSSTAMP): | $(STAMP)
	$(call apt_install_missing,$(DEB_PACKAGES))
	touch $@

system-deps: $(SYSSTAMP)

$(DEBSTAMP): | $(STAMP)
	$(call apt_install_missing,$(DEB_BUILD_PACKAGES))
	touch $@

deb-deps: $(DEBSTAMP)

# freevrrpd_<version>_all.deb in $(DEBDIR), built with Debian's tools from the
# files git tracks (a clean copy: nothing of .venv or earlier builds gets in).
deb: $(DEBSTAMP)
	rm -rf $(DEBDIR) && mkdir -p $(DEBDIR)/src
	git ls-files -z | xargs -0 cp --parents -t $(DEBDIR)/src
	# Debian's python3 and tools, not whatever interpreter comes first in PATH.
	cd $(DEBDIR)/src && env PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b
	@ls $(DEBDIR)/freevrrpd_*_all.deb

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The fast tests that need no root: unit tests and the receive-side RFC checks.
unit: install
	$(VENV)/bin/pytest -q tests/unit tests/conformance/test_receive.py

test: install system-deps deb-deps lint
	$(VENV)/bin/pytest -q --cov=freevrrpd.core --cov-report=term --cov-fail-under=90 tests

demo: install system-deps
	$(PY) -m lab.demo

bench: install system-deps
	$(PY) -m pip install --quiet matplotlib
	# Byte-compiled, as a package install leaves it (py3compile): start-up
	# figures must not count compiling the sources (PYTHONDONTWRITEBYTECODE
	# environments never write the caches themselves).
	$(PY) -m compileall -q freevrrpd
	$(PY) -m bench.run $(BENCHFLAGS)

# System-wide install: venv in /opt/freevrrpd, unit, init scripts, man pages, example config.
# Needs root unless DESTDIR is set; honours DESTDIR and PREFIX (also VENV, UNITDIR, PYTHON).
install-service:
	sh scripts/install-service.sh DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)"

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage build *.egg-info

distclean: clean
	rm -rf $(VENV)
