include $(sort $(wildcard $(BR2_EXTERNAL_ARGUS_PATH)/package/*/*.mk))
