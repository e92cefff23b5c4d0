package zfs_test

import (
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
)

func TestMain(m *testing.M) { acctest.Main(m) }
