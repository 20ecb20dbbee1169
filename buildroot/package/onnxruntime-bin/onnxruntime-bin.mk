################################################################################
#
# onnxruntime-bin
#
################################################################################

# The shared library from Microsoft's onnxruntime wheel on PyPI (the same one
# scripts/fetch-onnxruntime.sh takes). A wheel is a zip file: the generic
# infrastructure does not extract it, hence the EXTRACT_CMDS below. The wheel's
# Python tag does not matter: only the C library inside it is used.
ONNXRUNTIME_BIN_VERSION = 1.31.1
ONNXRUNTIME_BIN_SOURCE = onnxruntime-$(ONNXRUNTIME_BIN_VERSION)-cp311-cp311-manylinux_2_28_aarch64.whl
ONNXRUNTIME_BIN_SITE = https://files.pythonhosted.org/packages/02/ee/b173a49293b146b54bd057bf8681a015aef764d8f56d999ad8c6e53ab18d
ONNXRUNTIME_BIN_LICENSE = MIT
ONNXRUNTIME_BIN_LICENSE_FILES = onnxruntime/LICENSE onnxruntime/ThirdPartyNotices.txt

define ONNXRUNTIME_BIN_EXTRACT_CMDS
	$(UNZIP) -o -d $(@D) $(ONNXRUNTIME_BIN_DL_DIR)/$(ONNXRUNTIME_BIN_SOURCE) \
		'onnxruntime/capi/libonnxruntime.so.*' \
		onnxruntime/LICENSE \
		onnxruntime/ThirdPartyNotices.txt
endef

# argus loads the library by path (see runtime_candidates in
# src/detect/service.rs), so it goes in a private directory, not in the
# linker's search path.
define ONNXRUNTIME_BIN_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 \
		$(@D)/onnxruntime/capi/libonnxruntime.so.$(ONNXRUNTIME_BIN_VERSION) \
		$(TARGET_DIR)/usr/lib/argus/libonnxruntime.so
endef

$(eval $(generic-package))
