################################################################################
#
# argus
#
################################################################################

# Built from the checkout this br2-external tree lives in (buildroot/..).
# The version is Cargo.toml's (scripts/check-buildroot.sh checks they agree).
ARGUS_VERSION = 0.1.0
ARGUS_SITE = $(BR2_EXTERNAL_ARGUS_PATH)/..
ARGUS_SITE_METHOD = local
ARGUS_LICENSE = MIT, MIT (YOLOv3-tiny model), Apache-2.0 (Swagger UI), MIT (ReDoc), \
	MIT (Preact), Apache-2.0 (htm)
ARGUS_LICENSE_FILES = LICENSE models/MODELS.md \
	src/http/assets/LICENSES/swagger-ui-LICENSE \
	src/http/assets/LICENSES/swagger-ui-NOTICE \
	src/http/assets/LICENSES/redoc-LICENSE \
	web/vendor/LICENSES/preact-LICENSE.txt \
	web/vendor/LICENSES/htm-LICENSE.txt

# Host build products must not be copied in: target/ holds binaries for the
# build machine and can be gigabytes.
ARGUS_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target --exclude '/target-*' --exclude /fuzz/target \
	--exclude /data --exclude /VENDOR --exclude /.cargo

# The v4l crate runs bindgen at build time, which loads libclang and parses
# the target's <linux/videodev2.h> from the staging directory.
ARGUS_DEPENDENCIES = host-clang
ARGUS_CARGO_ENV = \
	LIBCLANG_PATH=$(HOST_DIR)/lib \
	BINDGEN_EXTRA_CLANG_ARGS="--sysroot=$(STAGING_DIR)"

# The infrastructure already passes --offline, --locked and --release.
ARGUS_CARGO_BUILD_OPTS = --bin argus

ARGUS_PROFILE = $(if $(BR2_ENABLE_DEBUG),debug,release)
# The default detector: YOLOv4-tiny, int8 for ONNX Runtime (aarch64) and float for
# tract (armv7, where tract's int8 kernels do not agree with ONNX Runtime's); the
# binary picks the one for its target (src/detect/service.rs), so both are installed.
ARGUS_MODELS = yolov4-tiny-416-int8 yolov4-tiny-416

# The models are not in git: scripts/make-model.sh makes them. Checked before the
# (long) build rather than at install time.
define ARGUS_CHECK_MODEL
	for m in $(ARGUS_MODELS); do \
		test -f $(@D)/models/$$m.onnx || { \
			echo "argus: models/$$m.onnx is missing."; \
			echo "argus: run scripts/make-model.sh --model yolov4-tiny --int8 in $(ARGUS_SITE) first, then"; \
			echo "argus: make argus-dirclean all"; \
			exit 1; }; \
		(cd $(@D)/models && sha256sum -c $$m.onnx.sha256) || exit 1; \
	done
endef
ARGUS_PRE_BUILD_HOOKS += ARGUS_CHECK_MODEL

# Cargo.toml's rust-version must not be newer than the Rust this Buildroot
# provides (host-rust-bin or host-rust); say so plainly instead of letting
# cargo fail later.
define ARGUS_CHECK_RUSTC
	need=$$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' $(@D)/Cargo.toml); \
	have=$$($(HOST_DIR)/bin/rustc --version | cut -d' ' -f2); \
	if [ "$$(printf '%s\n%s\n' "$$need" "$$have" | sort -V | head -n1)" != "$$need" ]; then \
		echo "argus: needs Rust >= $$need, this Buildroot provides $$have: use a newer Buildroot"; \
		exit 1; \
	fi
endef
ARGUS_PRE_BUILD_HOOKS += ARGUS_CHECK_RUSTC

# The cargo infrastructure vendors the crates only for downloaded sources
# (support/download/cargo-post-process); a local source has no download step.
# So vendor here, into the build directory, before the --offline build. This
# step needs to reach crates.io (or a mirror configured in CARGO_HOME); the
# crates are cached in $(BR_CARGO_HOME).
define ARGUS_VENDOR_CRATES
	cd $(@D) && mkdir -p .cargo && \
		CARGO_HOME=$(BR_CARGO_HOME) $(HOST_DIR)/bin/cargo vendor \
			--locked --versioned-dirs VENDOR > .cargo/config.toml.new && \
		mv .cargo/config.toml.new .cargo/config.toml
endef
ARGUS_PRE_BUILD_HOOKS += ARGUS_VENDOR_CRATES

# Install the binary cargo built (instead of the infrastructure's
# "cargo install"), the model the binary looks for in /usr/share/argus/models
# and the default configuration.
define ARGUS_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/target/$(RUSTC_TARGET_NAME)/$(ARGUS_PROFILE)/argus \
		$(TARGET_DIR)/usr/bin/argus
	for m in $(ARGUS_MODELS); do \
		test -f $(@D)/models/$$m.onnx || { \
			echo "argus: models/$$m.onnx is missing: run scripts/make-model.sh --model yolov4-tiny --int8"; \
			exit 1; }; \
		$(INSTALL) -D -m 0644 $(@D)/models/$$m.toml \
			$(TARGET_DIR)/usr/share/argus/models/$$m.toml || exit 1; \
		$(INSTALL) -D -m 0644 $(@D)/models/$$m.onnx \
			$(TARGET_DIR)/usr/share/argus/models/$$m.onnx || exit 1; \
	done
	$(INSTALL) -D -m 0644 $(@D)/models/coco.names \
		$(TARGET_DIR)/usr/share/argus/models/coco.names
	$(INSTALL) -D -m 0644 $(@D)/models/MODELS.md \
		$(TARGET_DIR)/usr/share/argus/models/MODELS.md
	$(INSTALL) -D -m 0644 $(@D)/packaging/argus.toml \
		$(TARGET_DIR)/etc/argus/argus.toml
endef

define ARGUS_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/packaging/S99argus \
		$(TARGET_DIR)/etc/init.d/S99argus
endef

define ARGUS_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/packaging/argus.service \
		$(TARGET_DIR)/usr/lib/systemd/system/argus.service
endef

# A system user and group argus, also in video for V4L2 cameras, no login,
# home /var/lib/argus (created, owned by argus).
define ARGUS_USERS
	argus -1 argus -1 * /var/lib/argus - video Argus Edge appliance
endef

define ARGUS_PERMISSIONS
	/var/lib/argus d 0700 argus argus - - - - -
endef

$(eval $(cargo-package))
