# push-step: load the built image, push it to PUSH_REGISTRY and write the reference clusters
# pull it by (PULL_REGISTRY/<image-name>:<image-tag>-<git-revision>) to OUTPUT_FILE.
# Env: WORKSPACE, OUTPUT_FILE, CONTAINERS_STORAGE_CONF, IMAGE_NAME, IMAGE_TAG, GIT_REVISION,
# PUSH_REGISTRY, PULL_REGISTRY, TLS_VERIFY (true or false).
require OUTPUT_FILE IMAGE_NAME IMAGE_TAG PUSH_REGISTRY PULL_REGISTRY TLS_VERIFY
check_revision
case $TLS_VERIFY in
true | false) ;;
*) die "TLS_VERIFY must be true or false, got: $TLS_VERIFY" ;;
esac
src="$IMAGE_NAME:$IMAGE_TAG-$GIT_REVISION"
target="$PUSH_REGISTRY/$src"

write_storage_conf
podman load -i "$IMAGE_TAR"
podman tag "$src" "$target"
log "Pushing $target"
podman push --tls-verify="$TLS_VERIFY" "$target"
write_output "$PULL_REGISTRY/$src"
