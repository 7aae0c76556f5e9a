# buildpacks.sh: the buildpack build-step, shared by ballerina-buildpack and
# google-cloud-buildpacks (their scripts call buildpack_build with extra pack arguments).
# Env: WORKSPACE, CONTAINERS_STORAGE_CONF, PODMAN_SOCKET, IMAGE_NAME, IMAGE_TAG, GIT_REVISION,
# APP_PATH, BUILDER_IMAGE, RUN_IMAGE, CACHE_DIR ("" = no cache), BUILDER_CACHE, RUN_CACHE
# (tarball names in CACHE_DIR).

# pack lives in /usr/local/bin of the podman-runner image.
case ":$PATH:" in
*:/usr/local/bin:*) ;;
*) PATH="$PATH:/usr/local/bin" ;;
esac

# start_podman_service: podman's Docker-compatible API on PODMAN_SOCKET, for pack.
start_podman_service() {
	require PODMAN_SOCKET
	mkdir -p "$(dirname "$PODMAN_SOCKET")"
	# A leftover socket would end the wait below before the service listens.
	rm -f "$PODMAN_SOCKET"
	podman system service --time=0 "unix://$PODMAN_SOCKET" &
	service_pid=$!
	trap 'kill "$service_pid" 2>/dev/null || true' EXIT
	# Wait at most 60 seconds, counted in fifths of a second (sleep 1 where the sleep
	# command takes whole seconds only).
	waited=0
	while [ ! -e "$PODMAN_SOCKET" ]; do
		if ! kill -0 "$service_pid" 2>/dev/null; then
			[ -e "$PODMAN_SOCKET" ] && break
			die "podman system service exited without creating $PODMAN_SOCKET"
		fi
		[ "$waited" -lt 300 ] || die "podman system service did not create $PODMAN_SOCKET within 60 seconds"
		if sleep 0.2 2>/dev/null; then
			waited=$((waited + 1))
		else
			sleep 1
			waited=$((waited + 5))
		fi
	done
	DOCKER_HOST="unix://$PODMAN_SOCKET"
	export DOCKER_HOST
}

# ensure_image IMAGE TARBALL: IMAGE is in podman's store. With a cache directory it is loaded
# from CACHE_DIR/TARBALL, or pulled and saved there when that is missing or unreadable.
ensure_image() {
	if [ -z "${CACHE_DIR:-}" ]; then
		podman pull "$1"
		return 0
	fi
	_tar="$CACHE_DIR/$2"
	if [ -f "$_tar" ]; then
		if podman load -i "$_tar"; then
			return 0
		fi
		log "Cached $2 could not be loaded; pulling $1 again"
	fi
	podman pull "$1"
	mkdir -p "$CACHE_DIR"
	# Save beside the cache and rename, so a concurrent build never loads half a tarball.
	_tmp=$(mktemp -d "$CACHE_DIR/.save.XXXXXX")
	podman save -o "$_tmp/$2" "$1"
	mv -f "$_tmp/$2" "$_tar"
	rmdir "$_tmp"
}

# buildpack_build [PACK ARGUMENT...]: build the app with pack and save it to IMAGE_TAR.
buildpack_build() {
	require IMAGE_NAME IMAGE_TAG BUILDER_IMAGE RUN_IMAGE BUILDER_CACHE RUN_CACHE
	check_revision
	APP_PATH=${APP_PATH:-}
	app=${APP_PATH#/}
	check_rel_path app-path "$app"
	app_dir="$SOURCE_DIR${app:+/$app}"
	check_inside app-path "$app_dir" "$SOURCE_DIR"
	image="$IMAGE_NAME:$IMAGE_TAG-$GIT_REVISION"

	write_storage_conf
	start_podman_service
	ensure_image "$BUILDER_IMAGE" "$BUILDER_CACHE"
	ensure_image "$RUN_IMAGE" "$RUN_CACHE"

	log "Building $image from $app_dir"
	pack build "$image" --builder "$BUILDER_IMAGE" --docker-host inherit \
		--path "$app_dir" --pull-policy if-not-present "$@"
	rm -f "$IMAGE_TAR"
	podman save -o "$IMAGE_TAR" "$image"
}
