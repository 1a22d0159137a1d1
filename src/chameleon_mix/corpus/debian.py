"""The Debian packages the demo reads, and their files as dpkg lists them.

A collector of Debian files (man pages, changelogs, licences, ...) reads only the files that
its declared packages list in dpkg's database (``/var/lib/dpkg/info/<package>.list``), never a
whole directory: installing SLURM, or any other package, beside the demo must not change its
corpus. Each declared package has the version it had where the demo's weights were measured
(Debian 12, bookworm); one missing or at another version is reported (a warning and the
manifest), and its files are read as found, since the demo runs on many machines.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from .declared import DeclaredFiles, matches

__all__ = ["DEMO_DEBIAN_PACKAGES", "debian_files", "dpkg_owners", "dpkg_versions"]

DPKG_INFO_DIR = "/var/lib/dpkg/info"
DPKG_STATUS = "/var/lib/dpkg/status"

# The demo's Debian packages at their bookworm versions: the base system (priority required,
# important and standard), the development headers of a Python build machine, the tools whose
# man pages, Perl modules, CMake modules and catalogues the demos read, and every package these
# depend on (248 packages).
DEMO_DEBIAN_PACKAGES: dict[str, str] = {
    "adduser": "3.134", "apt": "2.6.1", "base-files": "12.4+deb12u11", "base-passwd": "3.6.1",
    "bash": "5.2.15-2+b8", "bc": "1.07.1-3+b1", "binutils": "2.40-2", "binutils-common": "2.40-2",
    "binutils-x86-64-linux-gnu": "2.40-2", "bsdextrautils": "2.38.1-5+deb12u3",
    "bsdutils": "1:2.38.1-5+deb12u3", "bzip2": "1.0.8-5+b1",
    "ca-certificates": "20230311+deb12u1", "cmake-data": "3.25.1-1", "coreutils": "9.1-1",
    "cpp-12": "12.2.0-14+deb12u1", "dash": "0.5.12-2", "dbus": "1.14.10-1~deb12u1",
    "dbus-bin": "1.14.10-1~deb12u1", "dbus-daemon": "1.14.10-1~deb12u1",
    "dbus-session-bus-common": "1.14.10-1~deb12u1", "dbus-system-bus-common": "1.14.10-1~deb12u1",
    "debconf": "1.5.82", "debian-archive-keyring": "2023.3+deb12u2",
    "debianutils": "5.7-0.5~deb12u1", "diffutils": "1:3.8-4", "dmsetup": "2:1.02.185-2",
    "dpkg": "1.21.22", "dpkg-dev": "1.21.22", "e2fsprogs": "1.47.0-2", "file": "1:5.44-3",
    "findutils": "4.9.0-4", "g++-12": "12.2.0-14+deb12u1", "gcc-12": "12.2.0-14+deb12u1",
    "gcc-12-base": "12.2.0-14+deb12u1", "gettext": "0.21-12", "gettext-base": "0.21-12",
    "git": "1:2.39.5-0+deb12u3", "git-man": "1:2.39.5-0+deb12u3", "gpgv": "2.2.40-1.1+deb12u2",
    "grep": "3.8-5", "groff-base": "1.22.4-10", "gzip": "1.12-1", "hostname": "3.23+nmu1",
    "icu-devtools": "72.1-3+deb12u1", "init-system-helpers": "1.65.2", "iproute2": "6.1.0-3",
    "iso-codes": "4.15.0-1", "less": "590-2.1~deb12u2", "libacl1": "2.3.1-3",
    "libapparmor1": "3.0.8-3", "libapt-pkg6.0": "2.6.1", "libargon2-1": "0~20171227-0.3+deb12u1",
    "libasan8": "12.2.0-14+deb12u1", "libatomic1": "12.2.0-14+deb12u1", "libattr1": "1:2.5.1-4",
    "libaudit-common": "1:3.0.9-1", "libaudit1": "1:3.0.9-1", "libbinutils": "2.40-2",
    "libblkid1": "2.38.1-5+deb12u3", "libbpf1": "1:1.1.2-0+deb12u1", "libbrotli1": "1.0.9-2+b6",
    "libbsd0": "0.11.7-2", "libbz2-1.0": "1.0.8-5+b1", "libbz2-dev": "1.0.8-5+b1",
    "libc-bin": "2.36-9+deb12u14", "libc-dev-bin": "2.36-9+deb12u14",
    "libc-l10n": "2.36-9+deb12u14", "libc6": "2.36-9+deb12u14", "libc6-dev": "2.36-9+deb12u14",
    "libcap-ng0": "0.8.3-1+b3", "libcap2": "1:2.66-4+deb12u2+b2",
    "libcap2-bin": "1:2.66-4+deb12u2+b2", "libcbor0.8": "0.8.0-2+b1",
    "libcc1-0": "12.2.0-14+deb12u1", "libcom-err2": "1.47.0-2", "libcrypt-dev": "1:4.4.33-2",
    "libcrypt1": "1:4.4.33-2", "libcryptsetup12": "2:2.6.1-4~deb12u2", "libctf-nobfd0": "2.40-2",
    "libctf0": "2.40-2", "libcurl3-gnutls": "7.88.1-10+deb12u14", "libdb5.3": "5.3.28+dfsg2-1",
    "libdbus-1-3": "1.14.10-1~deb12u1", "libdebconfclient0": "0.270",
    "libdevmapper1.02.1": "2:1.02.185-2", "libdpkg-perl": "1.21.22", "libedit2": "3.1-20221030-2",
    "libelf1": "0.188-2.1", "liberror-perl": "0.17029-2", "libexpat1": "2.5.0-1+deb12u1",
    "libexpat1-dev": "2.5.0-1+deb12u1", "libext2fs2": "1.47.0-2", "libfdisk1": "2.38.1-5+deb12u3",
    "libffi-dev": "3.4.4-1", "libffi8": "3.4.4-1", "libfido2-1": "1.12.0-2+b1",
    "libgcc-12-dev": "12.2.0-14+deb12u1", "libgcc-s1": "12.2.0-14+deb12u1",
    "libgcrypt20": "1.10.1-3", "libgdbm-compat4": "1.23-3", "libgdbm6": "1.23-3",
    "libgmp-dev": "2:6.2.1+dfsg1-1.1", "libgmp10": "2:6.2.1+dfsg1-1.1",
    "libgmpxx4ldbl": "2:6.2.1+dfsg1-1.1", "libgnutls30": "3.7.9-2+deb12u6",
    "libgomp1": "12.2.0-14+deb12u1", "libgpg-error0": "1.46-1", "libgprofng0": "2.40-2",
    "libgssapi-krb5-2": "1.20.1-2+deb12u3", "libhogweed6": "3.8.1-2",
    "libicu-dev": "72.1-3+deb12u1", "libicu72": "72.1-3+deb12u1", "libidn2-0": "2.3.3-1+b1",
    "libip4tc2": "1.8.9-2", "libisl23": "0.25-1.1", "libitm1": "12.2.0-14+deb12u1",
    "libjansson4": "2.14-2", "libjson-c5": "0.16-2", "libk5crypto3": "1.20.1-2+deb12u3",
    "libkeyutils1": "1.6.3-2", "libkmod2": "30+20221128-1", "libkrb5-3": "1.20.1-2+deb12u3",
    "libkrb5support0": "1.20.1-2+deb12u3", "libldap-2.5-0": "2.5.13+dfsg-5",
    "liblocale-gettext-perl": "1.07-5", "liblsan0": "12.2.0-14+deb12u1", "liblz4-1": "1.9.4-1",
    "liblzma-dev": "5.4.1-1", "liblzma5": "5.4.1-1", "libmagic-mgc": "1:5.44-3",
    "libmagic1": "1:5.44-3", "libmd0": "1.0.4-2", "libmnl0": "1.0.4-3",
    "libmount1": "2.38.1-5+deb12u3", "libmpc3": "1.3.1-1", "libmpfr6": "4.2.0-1",
    "libncurses-dev": "6.4-4", "libncurses6": "6.4-4", "libncursesw6": "6.4-4",
    "libnettle8": "3.8.1-2", "libnghttp2-14": "1.52.0-1+deb12u2", "libnsl-dev": "1.3.0-2",
    "libnsl2": "1.3.0-2", "libnss-systemd": "252.38-1~deb12u1", "libp11-kit0": "0.24.1-2",
    "libpam-modules": "1.5.2-6+deb12u1", "libpam-modules-bin": "1.5.2-6+deb12u1",
    "libpam-runtime": "1.5.2-6+deb12u1", "libpam-systemd": "252.38-1~deb12u1",
    "libpam0g": "1.5.2-6+deb12u1", "libpcre2-8-0": "10.42-1", "libperl5.36": "5.36.0-7+deb12u2",
    "libpipeline1": "1.5.7-1", "libproc2-0": "2:4.0.2-3", "libpsl5": "0.21.2-1",
    "libpython3.11": "3.11.2-6+deb12u6", "libpython3.11-dev": "3.11.2-6+deb12u6",
    "libpython3.11-minimal": "3.11.2-6+deb12u6", "libpython3.11-stdlib": "3.11.2-6+deb12u6",
    "libquadmath0": "12.2.0-14+deb12u1", "libreadline-dev": "8.2-1.3", "libreadline8": "8.2-1.3",
    "librtmp1": "2.4+20151223.gitfa8646d.1-2+b2", "libsasl2-2": "2.1.28+dfsg-10",
    "libsasl2-modules-db": "2.1.28+dfsg-10", "libseccomp2": "2.5.4-1+deb12u1",
    "libselinux1": "3.4-1+b6", "libsemanage-common": "3.4-1", "libsemanage2": "3.4-1+b5",
    "libsepol2": "3.4-2.1", "libsmartcols1": "2.38.1-5+deb12u3",
    "libsqlite3-0": "3.40.1-2+deb12u2", "libsqlite3-dev": "3.40.1-2+deb12u2",
    "libss2": "1.47.0-2", "libssh2-1": "1.10.0-3+b1", "libssl-dev": "3.0.19-1~deb12u2",
    "libssl3": "3.0.19-1~deb12u2", "libstdc++-12-dev": "12.2.0-14+deb12u1",
    "libstdc++6": "12.2.0-14+deb12u1", "libsystemd-shared": "252.38-1~deb12u1",
    "libsystemd0": "252.38-1~deb12u1", "libtasn1-6": "4.19.0-2+deb12u1", "libtinfo6": "6.4-4",
    "libtirpc-common": "1.3.3+ds-1", "libtirpc-dev": "1.3.3+ds-1", "libtirpc3": "1.3.3+ds-1",
    "libtsan2": "12.2.0-14+deb12u1", "libubsan1": "12.2.0-14+deb12u1", "libuchardet0": "0.0.7-1",
    "libudev1": "252.38-1~deb12u1", "libunistring2": "1.0-2", "libuuid1": "2.38.1-5+deb12u3",
    "libxml2": "2.9.14+dfsg-1.3~deb12u5", "libxml2-dev": "2.9.14+dfsg-1.3~deb12u5",
    "libxslt1-dev": "1.1.35-1+deb12u3", "libxslt1.1": "1.1.35-1+deb12u3",
    "libxtables12": "1.8.9-2", "libxxhash0": "0.8.1-1", "libyaml-0-2": "0.2.5-1",
    "libyaml-dev": "0.2.5-1", "libzstd1": "1.5.4+dfsg2-5", "linux-libc-dev": "6.1.187-1",
    "locales": "2.36-9+deb12u14", "login": "1:4.13+dfsg1-1+deb12u1", "logsave": "1.47.0-2",
    "lsof": "4.95.0-1", "make": "4.3-4.1", "man-db": "2.11.2-2", "manpages": "6.03-2",
    "manpages-dev": "6.03-2", "mawk": "1.3.4.20200120-3.1", "media-types": "10.0.0",
    "mount": "2.38.1-5+deb12u3", "ncurses-base": "6.4-4", "ncurses-bin": "6.4-4",
    "net-tools": "2.10-0.1+deb12u2", "netbase": "6.4", "openssh-client": "1:9.2p1-2+deb12u6",
    "openssl": "3.0.19-1~deb12u2", "passwd": "1:4.13+dfsg1-1+deb12u1", "patch": "2.7.6-7",
    "perl": "5.36.0-7+deb12u2", "perl-base": "5.36.0-7+deb12u2",
    "perl-modules-5.36": "5.36.0-7+deb12u2", "procps": "2:4.0.2-3", "psmisc": "23.6-1",
    "readline-common": "8.2-1.3", "rpcsvc-proto": "1.4.3-1", "sed": "4.9-1",
    "sensible-utils": "0.0.17+nmu1", "systemd": "252.38-1~deb12u1",
    "systemd-sysv": "252.38-1~deb12u1", "systemd-timesyncd": "252.38-1~deb12u1",
    "sysvinit-utils": "3.06-4", "tar": "1.34+dfsg-1.2+deb12u1", "time": "1.9-0.2",
    "tzdata": "2025b-0+deb12u2", "ucf": "3.0043+nmu1+deb12u1", "usr-is-merged": "37~deb12u1",
    "util-linux": "2.38.1-5+deb12u3", "util-linux-extra": "2.38.1-5+deb12u3",
    "uuid-dev": "2.38.1-5+deb12u3", "vim-common": "2:9.0.1378-2+deb12u2",
    "wget": "1.21.3-1+deb12u1", "xz-utils": "5.4.1-1", "zlib1g": "1:1.2.13.dfsg-1",
    "zlib1g-dev": "1:1.2.13.dfsg-1",
}  # fmt: skip


def debian_files(
    packages: Mapping[str, str], patterns: Iterable[str], prune: frozenset[str]
) -> DeclaredFiles:
    """The regular files that the installed Debian ``packages`` (name -> declared version)
    list whose absolute path matches one of ``patterns`` (globs, "**/" for any directories),
    with no directory of ``prune`` on the way."""
    patterns = tuple(patterns)
    installed = dpkg_versions()
    files: dict[Path, tuple[str, str]] = {}
    versions: dict[str, str] = {}
    other_versions: dict[str, dict[str, str]] = {}
    missing = []
    for name, declared in packages.items():
        version = installed.get(name)
        if version is None:
            missing.append(name)
            continue
        versions[name] = version
        if version != declared:
            other_versions[name] = {"declared": declared, "installed": version}
        for path in _package_files(name, patterns, prune):
            files.setdefault(path, (name, version))
    return DeclaredFiles(files, versions, tuple(missing), other_versions)


def iter_debian_files(
    packages: Iterable[str], patterns: Iterable[str], prune: frozenset[str]
) -> Iterator[Path]:
    """The files of :func:`debian_files`, lazily (a cheap test that some exist)."""
    patterns = tuple(patterns)
    installed = dpkg_versions()
    for name in packages:
        if name in installed:
            yield from _package_files(name, patterns, prune)


def _package_files(
    package: str, patterns: tuple[str, ...], prune: frozenset[str]
) -> Iterator[Path]:
    for listed in _listing(package):
        path = _usr_merged(listed)
        if prune.intersection(path.split("/")[:-1]):
            continue
        matched = any(matches(path, pattern) for pattern in patterns)
        if matched and os.path.isfile(path) and not os.path.islink(path):
            yield Path(path)


def _usr_merged(path: str) -> str:
    """The /usr name of a file that dpkg lists under /bin, /sbin or /lib of a usr-merged
    system (Debian 12: /bin links to /usr/bin), so that a file has one name."""
    top = "/" + path.split("/")[1]
    if path.startswith("/usr/") or not os.path.islink(top):
        return path
    return "/usr" + path


@functools.cache
def _info_lists() -> dict[str, list[Path]]:
    """dpkg's file list of each installed package, by package name (``<package>.list`` or
    ``<package>:<arch>.list``)."""
    lists: dict[str, list[Path]] = {}
    for listing in sorted(Path(DPKG_INFO_DIR).glob("*.list")):
        lists.setdefault(listing.name[: -len(".list")].split(":")[0], []).append(listing)
    return lists


def package_lists(packages) -> list[str]:
    """The dpkg file lists of those of ``packages`` that are installed: dpkg rewrites a
    package's list when it installs, upgrades or removes it, so a job that declares them as
    inputs reruns exactly then."""
    lists = _info_lists()
    return [str(path) for package in packages for path in lists.get(package, [])]


def _listing(package: str) -> list[str]:
    """The paths an installed package lists (``<package>.list`` or ``<package>:<arch>.list``)."""
    info = Path(DPKG_INFO_DIR)
    paths: list[str] = []
    for listing in [info / f"{package}.list", *sorted(info.glob(f"{package}:*.list"))]:
        with contextlib.suppress(OSError):
            paths += listing.read_text(encoding="utf-8", errors="replace").splitlines()
    return paths


@functools.cache
def dpkg_owners() -> dict[str, str]:
    """Every path listed by an installed Debian package -> that package."""
    owners: dict[str, str] = {}
    for listing in sorted(Path(DPKG_INFO_DIR).glob("*.list")):
        package = listing.name[: -len(".list")].split(":")[0]
        with contextlib.suppress(OSError):
            for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
                owners.setdefault(line, package)
    return owners


@functools.cache
def dpkg_versions() -> dict[str, str]:
    """Each installed Debian package -> its version, from dpkg's status file."""
    versions: dict[str, str] = {}
    try:
        status = Path(DPKG_STATUS).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return versions
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|Status): *(.*)$", stanza, re.MULTILINE))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            versions.setdefault(fields["Package"], fields.get("Version", "unknown"))
    return versions
