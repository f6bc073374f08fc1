#!/bin/bash -e
# Enable the one daemon this image is for. The package enables nothing by
# itself; the image builder chooses in pi-gen's config:
#   export NEXFIELD_UNIT=peer     # air-gapped LoRa peer
#   export NEXFIELD_UNIT=agent    # gateway Pi with NATS
#   export NEXFIELD_UNIT=none     # install only
# The first-boot import needs no enabling: both daemons require it.
case "${NEXFIELD_UNIT:-}" in
agent | peer)
	on_chroot << CHROOT
systemctl enable nexfield-${NEXFIELD_UNIT}.service
CHROOT
	;;
none) ;;
*)
	echo "stage-nexfield: set NEXFIELD_UNIT=agent, peer or none in pi-gen's config (export NEXFIELD_UNIT=peer)" >&2
	exit 1
	;;
esac
