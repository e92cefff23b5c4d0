data "homelab_zfs_datasets" "media" {
  ssh {
    host = "nas.lan"
  }
  parent     = "tank/media"
  properties = ["used", "quota", "compressratio"]
}

# Warn when a dataset with a quota is within 10% of it.
check "media_quotas" {
  assert {
    condition = alltrue([
      for d in data.homelab_zfs_datasets.media.datasets :
      tonumber(lookup(d.properties, "quota", "0")) == 0 || tonumber(d.properties.used) < 0.9 * tonumber(d.properties.quota)
    ])
    error_message = "A dataset under tank/media is above 90% of its quota."
  }
}

output "media_usage" {
  value = { for d in data.homelab_zfs_datasets.media.datasets : d.name => d.properties.used }
}
