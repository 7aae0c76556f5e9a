# common.sh: prelude concatenated before every step script of the ClusterWorkflowTemplates.
#
# Contract of all step scripts: every input arrives as an environment variable (Argo
# substitutes workflow/input parameters into the container's env, never into this text) and
# is only ever used quoted. Nothing in these files is templated.
#
# Two rules for this text, because Kubernetes expands the container's args: never write a
# doubled dollar sign, and never write a command substitution whose whole text is the name
# of one of the step's environment variables.
set -eu

# die MESSAGE: print MESSAGE to stderr and fail the step.
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# log MESSAGE: progress line on stdout.
log() {
	printf '%s\n' "$*"
}

# require NAME...: each named environment variable is set and not empty.
require() {
	for _name in "$@"; do
		eval "_value=\${$_name:-}"
		[ -n "$_value" ] || die "environment variable $_name is not set"
	done
}

# is_hex VALUE: VALUE is 1 to 64 hexadecimal digits (a commit id, full or abbreviated).
is_hex() {
	case $1 in
	'' | *[!0-9a-fA-F]*) return 1 ;;
	esac
	[ "${#1}" -le 64 ]
}

# check_revision: GIT_REVISION (from clone-step) is a short commit id.
check_revision() {
	require GIT_REVISION
	is_hex "$GIT_REVISION" || die "git-revision is not a hexadecimal commit id: $GIT_REVISION"
}

# check_rel_path WHAT VALUE: VALUE, a path inside the repository, has no '..' component.
check_rel_path() {
	case "/$2/" in
	*/../*) die "$1 must stay inside the repository (no '..' component): $2" ;;
	esac
}

# check_inside WHAT PATH ROOT: if PATH exists, it resolves (following symlinks) to ROOT or
# somewhere below it, so a symlink in the repository cannot point a step elsewhere.
check_inside() {
	if [ ! -e "$2" ] && [ ! -L "$2" ]; then
		return 0
	fi
	_real=$(readlink -f "$2") || die "cannot resolve $1: $2"
	_root=$(readlink -f "$3") || die "cannot resolve $3"
	case "$_real/" in
	"$_root"/*) ;;
	*) die "$1 resolves outside the repository: $2" ;;
	esac
}

# write_storage_conf: podman's storage configuration (overlay through fuse-overlayfs) at
# $CONTAINERS_STORAGE_CONF, which podman reads instead of /etc/containers/storage.conf.
write_storage_conf() {
	require CONTAINERS_STORAGE_CONF
	mkdir -p "$(dirname "$CONTAINERS_STORAGE_CONF")"
	cat >"$CONTAINERS_STORAGE_CONF" <<'CONF'
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"

[storage.options.overlay]
mount_program = "/usr/bin/fuse-overlayfs"
CONF
	export CONTAINERS_STORAGE_CONF
}

# write_output VALUE: VALUE, without a newline, as the step's output parameter.
write_output() {
	require OUTPUT_FILE
	mkdir -p "$(dirname "$OUTPUT_FILE")"
	printf '%s' "$1" >"$OUTPUT_FILE"
}

# The image tarball build-step writes and push-step loads.
require WORKSPACE
IMAGE_TAR="$WORKSPACE/app-image.tar"
SOURCE_DIR="$WORKSPACE/source"
