/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd's D-Bus interface: the manager object org.headcount.Manager1 at
 * /org/headcount/Manager1, under the well-known name org.headcount.Manager1 on the user
 * or the system bus. headcountd(8) documents it; the vtable below is what
 * "busctl introspect" shows.
 *
 * Every answer is counted afresh through the region's handle, so it is exact even when
 * a change has not reached us through inotify yet; a change found that way is signalled
 * as any other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#if HAVE_FLEET
#include "fleet-bridge.h"
#endif
#include "headcountd.h"
#include "log.h"

static const sd_bus_error_map headcountd_errors[] = {
        SD_BUS_ERROR_MAP(HCD_BUS_ERROR_NO_SUCH_REGION, ENOENT),
        SD_BUS_ERROR_MAP_END
};

/* Finds the region named in a method call, or fills ERROR. */
static int region_from_bus(Manager *m, const char *name, Region **ret, sd_bus_error *error) {
        int k;

        /* sd_bus_error_set*() return a negative errno; the "< 0 ?" says so to analysers */
        if (hc_name_valid(name) < 0 || strchr(name, '\\')) {
                k = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                      "Invalid region name '%.*s': a name is 1 to %d bytes of "
                                      "[A-Za-z0-9._-] and does not start with '.'",
                                      HC_NAME_MAX, name, HC_NAME_MAX);
                return k < 0 ? k : -EINVAL;
        }
        /* A valid name with no region: nobody runs under it. Count says 0 and
         * ListInstances lists nobody, as 'headcount count' and 'list' do. */
        *ret = NULL;
        k = manager_track_region(m, name, ret);
        if (k == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (k < 0) {
                int e = sd_bus_error_set_errnof(error, k, "Cannot open region '%s' in %s: %m",
                                                name, m->dir_text);
                return e < 0 ? e : k;
        }
        return 0;
}

static int method_list_names(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int k;

        for (size_t i = 0; i < m->n_regions;) {
                size_t before = m->n_regions;

                (void) region_refresh(m->regions[i], NULL);
                if (m->n_regions == before)
                        i++;
        }

        k = sd_bus_message_new_method_return(msg, &reply);
        if (k < 0)
                return k;
        k = sd_bus_message_open_container(reply, 'a', "(su)");
        if (k < 0)
                return k;
        for (size_t i = 0; i < m->n_regions; i++) {
                k = sd_bus_message_append(reply, "(su)", m->regions[i]->name,
                                          (uint32_t) m->regions[i]->count);
                if (k < 0)
                        return k;
        }
        k = sd_bus_message_close_container(reply);
        if (k < 0)
                return k;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_count(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name = NULL;
        Region *r = NULL;
        int k;

        k = sd_bus_message_read(msg, "s", &name);
        if (k < 0)
                return k;
        k = region_from_bus(m, name, &r, error);
        if (k < 0)
                return k;
        k = r ? region_refresh(r, NULL) : -ENOENT;
        if (k == -ENOENT)
                return sd_bus_reply_method_return(msg, "u", (uint32_t) 0);
        if (k < 0)
                return sd_bus_error_set_errnof(error, k, "Cannot count region '%s': %m", name);
        return sd_bus_reply_method_return(msg, "u", (uint32_t) r->count);
}

static int method_list_instances(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        hc_instance *list = NULL;
        const char *name = NULL;
        Region *r = NULL;
        int n, k;

        k = sd_bus_message_read(msg, "s", &name);
        if (k < 0)
                return k;
        k = region_from_bus(m, name, &r, error);
        if (k < 0)
                return k;
        k = r ? region_refresh(r, &list) : -ENOENT;
        if (k < 0 && k != -ENOENT)
                return sd_bus_error_set_errnof(error, k, "Cannot list region '%s': %m", name);
        n = k == -ENOENT ? 0 : r->count;

        k = sd_bus_message_new_method_return(msg, &reply);
        if (k >= 0)
                k = sd_bus_message_open_container(reply, 'a', "(uuuttus)");
        for (int i = 0; k >= 0 && i < n; i++) {
                char tag[ESCAPE_TEXT_SIZE(HC_TAG_MAX)];

                /* D-Bus strings must be UTF-8, and a client may print them as they are */
                k = sd_bus_message_append(reply, "(uuuttus)",
                                          list[i].slot,
                                          (uint32_t) list[i].pid,
                                          (uint32_t) list[i].uid,
                                          list[i].seq,
                                          (uint64_t) list[i].joined_usec,
                                          list[i].flags,
                                          escape_text(list[i].tag, tag, sizeof tag));
        }
        free(list);
        if (k >= 0)
                k = sd_bus_message_close_container(reply);
        if (k < 0)
                return k;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_directory(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", m->dir_text);
}

#if HAVE_FLEET
/* FleetCount and FleetNames ask etcd, and answer when it answers. */
static int method_fleet_count(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name = NULL;
        int k;

        k = sd_bus_message_read(msg, "s", &name);
        if (k < 0)
                return k;
        if (!m->fleet)
                return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "This headcountd runs without --etcd");
        if (hc_name_valid(name) < 0 || strchr(name, '\\'))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid fleet name '%.*s'", HC_NAME_MAX, name);
        return fleet_bridge_bus_call(m->fleet, msg, name);
}

static int method_fleet_names(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        if (!m->fleet)
                return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "This headcountd runs without --etcd");
        return fleet_bridge_bus_call(m->fleet, msg, NULL);
}

/* The fleet agent's health, as the fleet thread last told it (fleet-bridge.h). */
static int property_fleet_state(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", m->fleet ? fleet_bridge_health(m->fleet)->text :
                                     "no fleet agent: headcountd runs without --etcd");
}
#else
static int method_fleet_count(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                "This headcountd was built without fleet support");
}

static int method_fleet_names(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return method_fleet_count(msg, userdata, error);
}

static int property_fleet_state(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", "no fleet agent: built without fleet support");
}
#endif

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Directory", "s", property_directory, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("FleetState", "s", property_fleet_state, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("ListNames",
                                 "", "",
                                 "a(su)", SD_BUS_PARAM(names),
                                 method_list_names, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Count",
                                 "s", SD_BUS_PARAM(name),
                                 "u", SD_BUS_PARAM(count),
                                 method_count, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListInstances",
                                 "s", SD_BUS_PARAM(name),
                                 "a(uuuttus)", SD_BUS_PARAM(instances),
                                 method_list_instances, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("FleetCount",
                                 "s", SD_BUS_PARAM(name),
                                 "u", SD_BUS_PARAM(count),
                                 method_fleet_count, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("FleetNames",
                                 "", "",
                                 "a(su)", SD_BUS_PARAM(names),
                                 method_fleet_names, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("FleetCountChanged",
                                 "su", SD_BUS_PARAM(name) SD_BUS_PARAM(count), 0),
        SD_BUS_SIGNAL_WITH_NAMES("CountChanged",
                                 "su", SD_BUS_PARAM(name) SD_BUS_PARAM(count), 0),
        SD_BUS_SIGNAL_WITH_NAMES("InstanceEvent", "ssuuu",
                                 SD_BUS_PARAM(name) SD_BUS_PARAM(event) SD_BUS_PARAM(slot)
                                 SD_BUS_PARAM(pid) SD_BUS_PARAM(flags), 0),
        SD_BUS_SIGNAL_WITH_NAMES("RegionAdded", "s", SD_BUS_PARAM(name), 0),
        SD_BUS_SIGNAL_WITH_NAMES("RegionRemoved", "s", SD_BUS_PARAM(name), 0),
        SD_BUS_VTABLE_END
};

static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        log_error("Lost the connection to the bus; exiting");
        return sd_event_exit(m->event, EXIT_FAILURE);
}

int manager_bus_start(Manager *m) {
        const char *which = m->bus_type == HCD_BUS_SYSTEM ? "system" : "user";
        int k;

        k = m->bus_type == HCD_BUS_SYSTEM ? sd_bus_open_system(&m->bus) : sd_bus_open_user(&m->bus);
        if (k < 0)
                return log_error_errno(k, "Cannot connect to the %s bus: %m", which);

        k = sd_bus_error_add_map(headcountd_errors);
        if (k < 0)
                return log_error_errno(k, "Cannot register D-Bus errors: %m");
        k = sd_bus_add_object_vtable(m->bus, NULL, HCD_BUS_PATH, HCD_BUS_INTERFACE,
                                     manager_vtable, m);
        if (k < 0)
                return log_error_errno(k, "Cannot add the manager object: %m");
        k = sd_bus_match_signal(m->bus, NULL, "org.freedesktop.DBus.Local", NULL,
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, m);
        if (k < 0)
                return log_error_errno(k, "Cannot watch the bus connection: %m");
        k = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (k < 0)
                return log_error_errno(k, "Cannot attach the bus to the event loop: %m");

        k = sd_bus_request_name(m->bus, HCD_BUS_NAME, 0);
        if (k == -EEXIST)
                return log_error_errno(k, "The name %s is already taken on the %s bus",
                                       HCD_BUS_NAME, which);
        if (k < 0)
                return log_error_errno(k, "Cannot acquire the name %s on the %s bus: %m",
                                       HCD_BUS_NAME, which);
        return 0;
}

void manager_bus_count_changed(Manager *m, const char *name, int count) {
        int k;

        if (!m->bus)
                return;
        k = sd_bus_emit_signal(m->bus, HCD_BUS_PATH, HCD_BUS_INTERFACE, "CountChanged", "su",
                               name, (uint32_t) count);
        if (k < 0)
                log_warning_errno(k, "Cannot send CountChanged for '%s': %m", name);
}

/* "join", "leave" or "died", as the journal's HEADCOUNT_EVENT= says, for one holder. */
void manager_bus_instance_event(Manager *m, const char *name, const char *event,
                                const hc_instance *in) {
        int k;

        if (!m->bus)
                return;
        k = sd_bus_emit_signal(m->bus, HCD_BUS_PATH, HCD_BUS_INTERFACE, "InstanceEvent", "ssuuu",
                               name, event, in->slot, (uint32_t) in->pid, in->flags);
        if (k < 0)
                log_warning_errno(k, "Cannot send InstanceEvent for '%s': %m", name);
}

void manager_bus_region_added(Manager *m, const char *name) {
        if (m->bus)
                (void) sd_bus_emit_signal(m->bus, HCD_BUS_PATH, HCD_BUS_INTERFACE, "RegionAdded",
                                          "s", name);
}

void manager_bus_region_removed(Manager *m, const char *name) {
        if (m->bus)
                (void) sd_bus_emit_signal(m->bus, HCD_BUS_PATH, HCD_BUS_INTERFACE,
                                          "RegionRemoved", "s", name);
}

/* The fleet agent's health changed: PropertiesChanged carries the new FleetState. */
void manager_bus_fleet_state_changed(Manager *m) {
        int k;

        if (!m->bus)
                return;
        k = sd_bus_emit_properties_changed(m->bus, HCD_BUS_PATH, HCD_BUS_INTERFACE,
                                           "FleetState", NULL);
        if (k < 0)
                log_warning_errno(k, "Cannot send PropertiesChanged for FleetState: %m");
}

/* A fleet name in use on this host (a seat or a waiter here) has a new count. */
void manager_bus_fleet_count_changed(Manager *m, const char *name, unsigned count) {
        int k;

        if (!m->bus)
                return;
        k = sd_bus_emit_signal(m->bus, HCD_BUS_PATH, HCD_BUS_INTERFACE, "FleetCountChanged",
                               "su", name, (uint32_t) count);
        if (k < 0)
                log_warning_errno(k, "Cannot send FleetCountChanged for '%s': %m", name);
}
