#!/bin/bash -e
# pi-gen: continue from the previous stage's root filesystem (stage2 for a
# Lite image).
if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
