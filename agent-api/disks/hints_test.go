package disks

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		op   string
		args []string
		fail bool
	}{
		{in: ">= 123", op: ">=", args: []string{"123"}},
		{in: ">=123", op: ">=", args: []string{"123"}},
		{in: "<or> 123 <or> 456 <or> 789", op: "<or>", args: []string{"123", "456", "789"}},
		{in: "<or> a <or>", op: "<or>", args: []string{"a"}},
		{in: "<in> small", op: "<in>", args: []string{"small"}},
		{in: "s== foo", op: "s==", args: []string{"foo"}},
		{in: "s==foo", op: "s==", args: []string{"foo"}},
		{in: "s<= b", op: "s<=", args: []string{"b"}},
		{in: "s< b", op: "s<", args: []string{"b"}},
		{in: "s>= b", op: "s>=", args: []string{"b"}},
		{in: "s> b", op: "s>", args: []string{"b"}},
		{in: "s!= b", op: "s!=", args: []string{"b"}},
		{in: "= 5", op: "=", args: []string{"5"}},
		{in: "== 5", op: "==", args: []string{"5"}},
		{in: "!= 5", op: "!=", args: []string{"5"}},
		{in: "< 5", op: "<", args: []string{"5"}},
		{in: "<= 5", op: "<=", args: []string{"5"}},
		{in: "> 5", op: ">", args: []string{"5"}},
		{in: "<all-in> aes mmx", op: "<all-in>", args: []string{"aes", "mmx"}},
		{in: "<range-in> [ 10 20 ]", op: "<range-in>", args: []string{"[", "10", "20", "]"}},
		// Only a prefix is parsed; the operand grammar forbids operators.
		{in: "foo bar", args: []string{"foo"}},
		{in: "foo s== bar", args: []string{"foo"}},
		{in: ">= 10 20", op: ">=", args: []string{"10"}},
		// pyparsing does not backtrack: "<range-in>" without four operands
		// is "<" followed by the operand "range-in>".
		{in: "<range-in> (10 20)", op: "<", args: []string{"range-in>"}},
		{in: "<or>", op: "<", args: []string{"or>"}},
		{in: "==", fail: true},
		{in: "s==", fail: true},
		{in: "<", fail: true},
		{in: "", fail: true},
		{in: "   ", fail: true},
	}
	for _, tt := range tests {
		got, ok := parseSpec(tt.in)
		if ok == tt.fail {
			t.Errorf("parseSpec(%q) ok = %v, want %v", tt.in, ok, !tt.fail)
			continue
		}
		if tt.fail {
			continue
		}
		if got.op != tt.op || strings.Join(got.args, "|") != strings.Join(tt.args, "|") {
			t.Errorf("parseSpec(%q) = %q %q, want %q %q", tt.in, got.op, got.args, tt.op, tt.args)
		}
	}
}

// Cases from IPA's test_device_hints.py.
func TestNormalizeHintExpression(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<or> foo <or> foo bar <or> bar", "<or> foo <or> foo%20bar <or> bar"},
		{"<in> foo <in> foo bar <in> bar", "<in> foo <in> foo%20bar <in> bar"},
		{"s== test string with space", "s== test%20string%20with%20space"},
		{"s!= SpongeBob", "s!= spongebob"},
		{"no operators", "no%20operators"},
		{"NoSpace", "nospace"},
		{"1:0:0:0", "1%3A0%3A0%3A0"},
		{"/dev/disk/by-path/1:0:0:0", "/dev/disk/by-path/1%3A0%3A0%3A0"},
		{"  padded\t", "padded"},
		{"a_b.c-d~e", "a_b.c-d~e"},
		{"Ünïcode", "%C3%BCn%C3%AFcode"},
	}
	for _, tt := range tests {
		got, err := normalizeHintExpression(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("normalizeHintExpression(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := normalizeHintExpression("  "); !errors.Is(err, errEmptyExpression) {
		t.Errorf("empty expression: got %v, want %v", err, errEmptyExpression)
	}
}

func TestExtractHintExpression(t *testing.T) {
	tests := []struct {
		in     string
		op     string
		values []string
	}{
		{">= 123", ">=", []string{"123"}},
		{"<or> 123 <or> 456 <or> 789", "<or>", []string{"123", "456", "789"}},
		{"<or> foo <or> foo bar <or> bar", "<or>", []string{"foo", "foo bar", "bar"}},
		{"123", "", []string{"123"}},
		{"Foo Bar", "", []string{"foo bar"}},
	}
	for _, tt := range tests {
		got, err := extractHintExpression(tt.in)
		if err != nil || got.op != tt.op || strings.Join(got.values, "|") != strings.Join(tt.values, "|") {
			t.Errorf("extractHintExpression(%q) = %+v, %v; want %q %q", tt.in, got, err, tt.op, tt.values)
		}
	}
}

// ipaDevices are the disks of IPA's MatchRootDeviceTestCase, with what
// IPA's list values become in our single-valued fields. IPA's sda has no
// rotational attribute, which a Disk cannot express; it is rotational here.
var ipaDevices = []Disk{
	{Name: "/dev/sda", Size: 64424509440, Model: "ok model", Serial: "fakeserial", WWN: "wwn_1", Rotational: true,
		Vendor: "ATA", HCTL: "1:0:0:0", ByPath: "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"},
	{Name: "/dev/sdb", Size: 128849018880, Model: "big model", Serial: "veryfakeserial", Rotational: true, WWN: "wwn_2",
		Vendor: "SEAGATE", WWNWithExtension: "wwn_2_ext", WWNVendorExtension: "0x1234", HCTL: "2:0:0:0",
		ByPath: "/dev/disk/by-path/pci-0000:00:1f.2-ata-2"},
	{Name: "/dev/sdc", Size: 10737418240, Model: "small model", Serial: "veryveryfakeserial", WWN: "wwn_3",
		Vendor: "Samsung SSD", HCTL: "3:0:0:0"},
}

func TestSelectRootMatches(t *testing.T) {
	tests := []struct {
		name  string
		hints map[string]any
		want  string
	}{
		// From IPA's test cases.
		{"one hint", map[string]any{"size": ">= 70"}, "/dev/sdb"},
		{"rotational false", map[string]any{"rotational": false}, "/dev/sdc"},
		{"rotational and size", map[string]any{"size": ">=100", "rotational": true}, "/dev/sdb"},
		{"multiple hints", map[string]any{"size": ">= 50", "model": "s==big model", "serial": "s==veryfakeserial"}, "/dev/sdb"},
		{"or with trailing operator", map[string]any{"size": "<= 20", "model": "<or> model 5 <or> foomodel <or> small model <or>",
			"serial": "s== veryveryfakeserial"}, "/dev/sdc"},
		{"in", map[string]any{"rotational": false, "model": "<in> small"}, "/dev/sdc"},
		{"no operators", map[string]any{"size": "120", "model": "big model", "serial": "veryfakeserial"}, "/dev/sdb"},
		{"name", map[string]any{"name": "s== /dev/sda"}, "/dev/sda"},
		{"serial", map[string]any{"serial": "s== fakeserial"}, "/dev/sda"},
		{"wwn", map[string]any{"wwn": "s== wwn_2"}, "/dev/sdb"},

		// size: every numeric operator, in GiB (sda 60, sdb 120, sdc 10).
		{"size bare int", map[string]any{"size": 60}, "/dev/sda"},
		{"size JSON number", map[string]any{"size": float64(120)}, "/dev/sdb"},
		{"size json.Number", map[string]any{"size": json.Number("10")}, "/dev/sdc"},
		{"size bare string", map[string]any{"size": "10"}, "/dev/sdc"},
		{"size ==", map[string]any{"size": "== 120"}, "/dev/sdb"},
		{"size !=", map[string]any{"size": "!= 60"}, "/dev/sdb"},
		{"size >", map[string]any{"size": "> 60"}, "/dev/sdb"},
		{"size >=", map[string]any{"size": ">= 60"}, "/dev/sda"},
		{"size <", map[string]any{"size": "< 60"}, "/dev/sdc"},
		{"size <=", map[string]any{"size": "<= 60"}, "/dev/sda"},
		{"size legacy = means >=", map[string]any{"size": "= 61"}, "/dev/sdb"},
		{"size or", map[string]any{"size": "<or> 11 <or> 120"}, "/dev/sdb"},
		{"size range inclusive", map[string]any{"size": "<range-in> [ 100 120 ]"}, "/dev/sdb"},
		{"size range exclusive low", map[string]any{"size": "<range-in> ( 60 200 )"}, "/dev/sdb"},
		{"size range inclusive low", map[string]any{"size": "<range-in> [ 60 200 )"}, "/dev/sda"},
		{"size range exclusive high", map[string]any{"size": "<range-in> [ 10 60 )"}, "/dev/sdc"},
		{"size with spaces and case", map[string]any{"size": "  >=  100 "}, "/dev/sdb"},

		// strings: every operator, after Ironic's normalisation.
		{"model case-insensitive", map[string]any{"model": "BIG MODEL"}, "/dev/sdb"},
		{"model s!=", map[string]any{"model": "s!= ok model"}, "/dev/sdb"},
		{"model s<", map[string]any{"model": "s< c"}, "/dev/sdb"},
		{"model s<=", map[string]any{"model": "s<= big%20model"}, "/dev/sdb"},
		{"model s>", map[string]any{"model": "s> ok"}, "/dev/sda"},
		{"model s>=", map[string]any{"model": "s>= small model"}, "/dev/sdc"},
		{"model or with spaces", map[string]any{"model": "<or> nope <or> small model"}, "/dev/sdc"},
		{"vendor with space", map[string]any{"vendor": "samsung ssd"}, "/dev/sdc"},
		{"vendor or", map[string]any{"vendor": "<or> samsung ssd <or> winsys"}, "/dev/sdc"},
		{"vendor in", map[string]any{"vendor": "<in> gate"}, "/dev/sdb"},
		{"wwn_with_extension", map[string]any{"wwn_with_extension": "wwn_2_ext"}, "/dev/sdb"},
		{"wwn_vendor_extension", map[string]any{"wwn_vendor_extension": "0X1234"}, "/dev/sdb"},
		{"hctl", map[string]any{"hctl": "3:0:0:0"}, "/dev/sdc"},
		{"hctl s==", map[string]any{"hctl": "s== 2:0:0:0"}, "/dev/sdb"},
		{"by_path", map[string]any{"by_path": "/dev/disk/by-path/pci-0000:00:1f.2-ata-2"}, "/dev/sdb"},
		{"by_path without prefix", map[string]any{"by_path": "pci-0000:00:1f.2-ata-1"}, "/dev/sda"},
		{"serial in", map[string]any{"serial": "<in> veryvery"}, "/dev/sdc"},

		// name: with or without /dev/, or a by-path link.
		{"name without /dev/", map[string]any{"name": "sdb"}, "/dev/sdb"},
		{"name or without /dev/", map[string]any{"name": "<or> sdx <or> sdc"}, "/dev/sdc"},
		{"name or", map[string]any{"name": "<or> /dev/sda <or> /dev/sdb"}, "/dev/sda"},
		{"name s!=", map[string]any{"name": "s!= sda"}, "/dev/sdb"},
		{"name by-path", map[string]any{"name": "/dev/disk/by-path/pci-0000:00:1f.2-ata-2"}, "/dev/sdb"},
		{"name in", map[string]any{"name": "<in> sdc"}, "/dev/sdc"},

		// rotational accepts oslo's boolean strings.
		{"rotational yes", map[string]any{"rotational": "yes"}, "/dev/sda"},
		{"rotational on", map[string]any{"rotational": "on"}, "/dev/sda"},
		{"rotational 1", map[string]any{"rotational": "1"}, "/dev/sda"},
		{"rotational t", map[string]any{"rotational": "T"}, "/dev/sda"},
		{"rotational number", map[string]any{"rotational": float64(0)}, "/dev/sdc"},
		{"rotational no", map[string]any{"rotational": "no"}, "/dev/sdc"},
		{"rotational off", map[string]any{"rotational": "off"}, "/dev/sdc"},
		{"rotational n", map[string]any{"rotational": "n"}, "/dev/sdc"},
		{"rotational false string", map[string]any{"rotational": " False "}, "/dev/sdc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SelectRoot(ipaDevices, tt.hints)
			if err != nil {
				t.Fatalf("SelectRoot(%v): %v", tt.hints, err)
			}
			if got.Name != tt.want {
				t.Errorf("SelectRoot(%v) = %s, want %s", tt.hints, got.Name, tt.want)
			}
		})
	}
}

func TestSelectRootNoMatch(t *testing.T) {
	tests := []struct {
		name  string
		hints map[string]any
		disks []Disk
	}{
		{"size too big", map[string]any{"size": ">= 100500"}, ipaDevices},
		{"from IPA", map[string]any{"size": ">=50", "model": "s==foo"}, ipaDevices},
		{"empty attribute", map[string]any{"model": "foo"}, []Disk{{Name: "/dev/sda", Model: " "}}},
		{"empty attribute never matches s!=", map[string]any{"serial": "s!= x"}, []Disk{{Name: "/dev/sda"}}},
		{"size or, no equal size", map[string]any{"size": "<or> 61 <or> 121"}, ipaDevices},
		{"numeric operator on non-numeric value", map[string]any{"model": ">= 5"}, ipaDevices},
		{"by-path name on disk without link", map[string]any{"name": "/dev/disk/by-path/pci-0000:00:1f.2-ata-9"}, ipaDevices},
		{"in is a substring test, not word order", map[string]any{"model": "<in> model small"}, ipaDevices},
		{"no disks", map[string]any{"size": 10}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SelectRoot(tt.disks, tt.hints)
			if !errors.Is(err, ErrNoRootDisk) {
				t.Fatalf("SelectRoot(%v) = %s, %v; want ErrNoRootDisk", tt.hints, got.Name, err)
			}
			for name := range tt.hints {
				if !strings.Contains(err.Error(), `"`+name+`":`) {
					t.Errorf("error %q does not name hint %s", err, name)
				}
			}
			for _, d := range tt.disks {
				if !strings.Contains(err.Error(), d.Name) {
					t.Errorf("error %q does not list disk %s", err, d.Name)
				}
			}
		})
	}
}

func TestSelectRootNumericStringHint(t *testing.T) {
	disks := []Disk{{Name: "/dev/sda", Serial: "ABC"}, {Name: "/dev/sdb", Serial: "12"}, {Name: "/dev/sdc", Serial: "500"}}
	got, err := SelectRoot(disks, map[string]any{"serial": "> 100"})
	if err != nil || got.Name != "/dev/sdc" {
		t.Fatalf("SelectRoot = %s, %v; want /dev/sdc", got.Name, err)
	}
}

func TestSelectRootErrorMessage(t *testing.T) {
	_, err := SelectRoot(ipaDevices[:1], map[string]any{"size": ">= 100"})
	want := `no disk matches root device hints {"size":">= 100"}; disks considered: /dev/sda (size 60 GiB)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestSelectRootInvalidHints(t *testing.T) {
	tests := []struct {
		name  string
		hints map[string]any
		want  string // part of the message
	}{
		{"unknown hint", map[string]any{"non-existent": "foo"}, `unknown root device hints "non-existent"`},
		{"IPA-only tran hint", map[string]any{"tran": "sas"}, `"tran"`},
		{"size not int", map[string]any{"size": "not-int"}, `"size"`},
		{"size negative", map[string]any{"size": -123}, `positive`},
		{"size zero", map[string]any{"size": 0}, `positive`},
		{"size fraction", map[string]any{"size": 12.5}, `"size"`},
		{"size bool", map[string]any{"size": true}, `"size"`},
		{"size null", map[string]any{"size": nil}, `"size"`},
		{"size or with non-int", map[string]any{"size": "<or> 123 <or> non-int <or> 789"}, `"non-int"`},
		{"size two values", map[string]any{"size": ">= 10 20"}, `"size"`},
		{"size string operator", map[string]any{"size": "s== 10"}, `operator s==`},
		{"size in", map[string]any{"size": "<in> 10"}, `operator <in>`},
		{"size all-in", map[string]any{"size": "<all-in> 10"}, `operator <all-in>`},
		{"size range without spaces", map[string]any{"size": "<range-in> [10 20]"}, `range`},
		{"size range reversed", map[string]any{"size": "<range-in> [ 20 10 ]"}, `lower bound`},
		{"size range bad bracket", map[string]any{"size": "<range-in> { 10 20 ]"}, `starts with`},
		{"size range bad end", map[string]any{"size": "<range-in> [ 10 20 }"}, `ends with`},
		{"size range words", map[string]any{"size": "<range-in> [ a 20 ]"}, `numbers`},
		{"size empty", map[string]any{"size": " "}, `empty`},
		{"size operator only", map[string]any{"size": ">="}, `no value`},
		{"rotational not bool", map[string]any{"rotational": "not-bool"}, `"rotational"`},
		{"rotational null", map[string]any{"rotational": nil}, `"rotational"`},
		{"wwn int", map[string]any{"wwn": 123}, `"wwn": 123 is not a string`},
		{"wwn_with_extension int", map[string]any{"wwn_with_extension": 123}, `"wwn_with_extension"`},
		{"wwn_vendor_extension int", map[string]any{"wwn_vendor_extension": 123}, `"wwn_vendor_extension"`},
		{"model int", map[string]any{"model": 123}, `"model"`},
		{"serial int", map[string]any{"serial": 123}, `"serial"`},
		{"vendor int", map[string]any{"vendor": 123}, `"vendor"`},
		{"name int", map[string]any{"name": 123}, `"name"`},
		{"hctl int", map[string]any{"hctl": 123}, `"hctl"`},
		{"by_path int", map[string]any{"by_path": 123}, `"by_path"`},
		{"model empty", map[string]any{"model": ""}, `empty`},
		{"model operator only", map[string]any{"model": "s=="}, `no value`},
		{"model all-in", map[string]any{"model": "<all-in> a b"}, `<all-in>`},
		{"model range", map[string]any{"model": "<range-in> [ 1 2 ]"}, `<range-in>`},
		{"model numeric operator with word", map[string]any{"model": ">= abc"}, `numbers`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SelectRoot(ipaDevices, tt.hints)
			if err == nil {
				t.Fatalf("SelectRoot(%v) succeeded", tt.hints)
			}
			if errors.Is(err, ErrNoRootDisk) {
				t.Fatalf("SelectRoot(%v): %v; want a validation error", tt.hints, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SelectRoot(%v) error %q does not contain %q", tt.hints, err, tt.want)
			}
			if ParseRootDeviceHints(tt.hints) == nil {
				t.Errorf("ParseRootDeviceHints(%v) accepted what SelectRoot rejects", tt.hints)
			}
		})
	}
}

func TestSelectRootDefault(t *testing.T) {
	tests := []struct {
		name  string
		disks []Disk
		want  string
	}{
		{"smallest of at least 4 GiB", ipaDevices, "/dev/sdc"},
		{"skips small disks", []Disk{
			{Name: "/dev/sda", Size: 1 << 30},
			{Name: "/dev/sdb", Size: 8 << 30},
			{Name: "/dev/sdc", Size: 5 << 30},
		}, "/dev/sdc"},
		{"exactly 4 GiB qualifies", []Disk{{Name: "/dev/sdb", Size: 5 << 30}, {Name: "/dev/sda", Size: 4 << 30}}, "/dev/sda"},
		{"ties broken by name", []Disk{
			{Name: "/dev/sdb", Size: 10 << 30},
			{Name: "/dev/nvme0n1", Size: 10 << 30},
			{Name: "/dev/sda", Size: 10 << 30},
		}, "/dev/nvme0n1"},
		// IPA's guess_root_disk looks at size alone.
		{"read-only and removable are not skipped", []Disk{
			{Name: "/dev/sda", Size: 6 << 30, ReadOnly: true, Removable: true},
			{Name: "/dev/sdb", Size: 8 << 30},
		}, "/dev/sda"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			order := make([]string, len(tt.disks))
			for i, d := range tt.disks {
				order[i] = d.Name
			}
			got, err := SelectRoot(tt.disks, nil)
			if err != nil || got.Name != tt.want {
				t.Fatalf("SelectRoot = %s, %v; want %s", got.Name, err, tt.want)
			}
			for i, d := range tt.disks {
				if d.Name != order[i] {
					t.Fatalf("SelectRoot reordered the caller's disks")
				}
			}
		})
	}

	_, err := SelectRoot([]Disk{{Name: "/dev/sda", Size: 1 << 30}}, map[string]any{})
	if !errors.Is(err, ErrNoRootDisk) || !strings.Contains(err.Error(), "/dev/sda (size 1 GiB)") {
		t.Errorf("all disks too small: got %v", err)
	}
}

func TestSelectRootFirstMatchInOrder(t *testing.T) {
	got, err := SelectRoot(ipaDevices, map[string]any{"size": ">= 10"})
	if err != nil || got.Name != "/dev/sda" {
		t.Fatalf("SelectRoot = %s, %v; want the first matching disk, /dev/sda", got.Name, err)
	}
}

// FuzzRootDeviceHints checks that no hint expression makes parsing or
// matching panic, and that valid hints either match or report ErrNoRootDisk.
func FuzzRootDeviceHints(f *testing.F) {
	for _, seed := range []struct{ name, value string }{
		{"size", ">= 60"}, {"size", "<range-in> ( 10 100 ]"}, {"size", "<or> 1 <or> 2"},
		{"model", "<or> a <or> b c"}, {"name", "s!= sda"}, {"serial", "<in> x"},
		{"rotational", "yes"}, {"hctl", "<all-in> a"}, {"vendor", "s== <or>"}, {"model", "<"},
	} {
		f.Add(seed.name, seed.value)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		hints := map[string]any{name: value}
		_, err := SelectRoot(ipaDevices, hints)
		if parseErr := ParseRootDeviceHints(hints); parseErr == nil && err != nil && !errors.Is(err, ErrNoRootDisk) {
			t.Fatalf("valid hints %v failed to match with %v", hints, err)
		}
	})
}
