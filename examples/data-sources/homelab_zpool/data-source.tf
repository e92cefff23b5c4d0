data "homelab_zpool" "tank" {
  ssh {
    host = "nas.lan"
  }
  name = "tank"
}

# Warn on every plan when the pool is not healthy or is filling up.
check "tank_health" {
  assert {
    condition     = data.homelab_zpool.tank.health == "ONLINE"
    error_message = "Pool tank is ${data.homelab_zpool.tank.health}: ${join("; ", data.homelab_zpool.tank.problems)}"
  }
  assert {
    condition     = data.homelab_zpool.tank.capacity_percent < 80
    error_message = "Pool tank is ${floor(data.homelab_zpool.tank.capacity_percent)}% full; ZFS slows down past 80%."
  }
}
