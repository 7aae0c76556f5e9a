# workload-create-step: run the openchoreo CLI on the repository's workload.yaml (in the app
# directory) and copy the Workload it writes to OUTPUT_FILE.
# Env: WORKSPACE, OUTPUT_FILE, CONTAINERS_STORAGE_CONF, APP_PATH, PROJECT_NAME, COMPONENT_NAME,
# IMAGE, CLI_IMAGE.
require OUTPUT_FILE PROJECT_NAME COMPONENT_NAME IMAGE CLI_IMAGE
APP_PATH=${APP_PATH:-}
app=${APP_PATH#/}
check_rel_path app-path "$app"
app_dir="$SOURCE_DIR${app:+/$app}"
[ -d "$app_dir" ] || die "app path is not a directory of the repository: $APP_PATH"
check_inside app-path "$app_dir" "$SOURCE_DIR"
case $app_dir in
*:*) die "app path must not contain ':' (it is bind-mounted with podman -v): $APP_PATH" ;;
esac

write_storage_conf
rm -f "$app_dir/workload-cr.yaml"
log "Creating the workload of $IMAGE from $app_dir/workload.yaml"
podman run --rm --network=none -v "$app_dir:/app:rw" -w /app "$CLI_IMAGE" \
	create workload --project "$PROJECT_NAME" --component "$COMPONENT_NAME" \
	--image "$IMAGE" --descriptor workload.yaml -o workload-cr.yaml
if [ ! -f "$app_dir/workload-cr.yaml" ] || [ -L "$app_dir/workload-cr.yaml" ]; then
	die "the CLI did not write workload-cr.yaml"
fi
mkdir -p "$(dirname "$OUTPUT_FILE")"
cp -f "$app_dir/workload-cr.yaml" "$OUTPUT_FILE"
