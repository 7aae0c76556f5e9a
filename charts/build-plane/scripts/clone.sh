# clone-step: clone GIT_REPO at COMMIT (when set) or BRANCH into $WORKSPACE/source and write
# the first 8 characters of the checked-out commit to OUTPUT_FILE.
# Env: WORKSPACE, OUTPUT_FILE, GIT_REPO, COMMIT, BRANCH.
require OUTPUT_FILE GIT_REPO
COMMIT=${COMMIT:-}
BRANCH=${BRANCH:-}

# Network transports only: no ext:: (runs a command) and no file:// (reads the step's files).
GIT_ALLOW_PROTOCOL=https:http:ssh:git
export GIT_ALLOW_PROTOCOL

if [ -n "$COMMIT" ]; then
	is_hex "$COMMIT" || die "commit must be a hexadecimal commit id, got: $COMMIT"
	log "Cloning commit $COMMIT of $GIT_REPO"
	git clone --no-checkout --depth 1 -- "$GIT_REPO" "$SOURCE_DIR"
	cd "$SOURCE_DIR"
	git config --global advice.detachedHead false
	git fetch --depth 1 origin "$COMMIT"
	git checkout --detach "$COMMIT"
else
	[ -n "$BRANCH" ] || die "neither commit nor branch is set"
	log "Cloning branch $BRANCH of $GIT_REPO"
	git clone --single-branch --depth 1 --branch "$BRANCH" -- "$GIT_REPO" "$SOURCE_DIR"
	cd "$SOURCE_DIR"
fi

head=$(git rev-parse HEAD)
is_hex "$head" || die "git rev-parse HEAD did not print a commit id: $head"
revision=$(printf '%.8s' "$head")
log "Revision $revision"
write_output "$revision"
