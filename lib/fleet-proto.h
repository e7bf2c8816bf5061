/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet agent's local socket protocol (docs/fleet.md, "The agent's socket protocol"):
 * the one place that fixes its names and limits, shared by the client (lib/fleet.c) and
 * the agent (daemon/fleet-*.c). Not installed.
 *
 * A message is a list of text fields separated by NUL bytes, one message per
 * SOCK_SEQPACKET packet, with no NUL after the last field.
 */
#ifndef HC_FLEET_PROTO_H
#define HC_FLEET_PROTO_H

/* The agent's socket in a local scope directory (the user scope, a --dir). */
#define HC_FLEET_SOCKET ".headcountd.fleet"

/* The system scope's agent: a fixed path in a directory only root can write, so that no
 * user can squat the name or plant a symlink in its place. Its socket is 0666; the agent
 * decides who may do what from SO_PEERCRED. */
#define HC_FLEET_SYSTEM_DIR "/run/headcountd"
#define HC_FLEET_SYSTEM_NAME "fleet.sock"
#define HC_FLEET_SYSTEM_SOCKET HC_FLEET_SYSTEM_DIR "/" HC_FLEET_SYSTEM_NAME

/* The longest message either side sends or accepts, and the most fields in one. */
#define HC_FLEET_MESSAGE_MAX 4096
#define HC_FLEET_FIELDS_MAX 12

/* The most entries one LIST or NAMES answer may carry: a client stops reading there. */
#define HC_FLEET_ENTRIES_MAX 100000

/* The longest text an answer carries (ERR's, LOST's), in bytes. */
#define HC_FLEET_TEXT_MAX 1023

/* STATUS answers "OK STATE TEXT" with STATE one of these. */
#define HC_FLEET_STATE_STARTING "starting"          /* no lease asked for yet */
#define HC_FLEET_STATE_HELD "held"                  /* lease held and renewed on time */
#define HC_FLEET_STATE_LATE "late"                  /* lease held, a renewal is overdue */
#define HC_FLEET_STATE_LOST "lost"                  /* the lease was lost; a new one is asked for */
#define HC_FLEET_STATE_UNREACHABLE "unreachable"    /* no lease: etcd cannot be reached or refuses */

#endif
