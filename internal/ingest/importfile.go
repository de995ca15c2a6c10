package ingest

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Import formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// importChunk is how many records an import writes per transaction: large
// enough to amortise the commit, small enough to keep memory flat.
var importChunk = DefaultMaxRecords

// maxLine bounds one line of a JSON Lines file.
const maxLine = 1 << 20

// ImportError is an import that stopped early. The records before
// CommittedLines were written (the Stats returned with it count them);
// nothing from the chunk that held the first problem on was. Importing the
// fixed file again is safe: records are idempotent.
type ImportError struct {
	// CommittedLines is the last line of the last committed chunk (0: none).
	CommittedLines int
	// Err is a *RecordsError (records named by line) or the cause.
	Err error
}

// Error implements error.
func (e *ImportError) Error() string {
	var re *RecordsError
	if errors.As(e.Err, &re) {
		var b strings.Builder
		fmt.Fprintf(&b, "%d invalid record(s)", re.Total)
		for _, fe := range re.Errors {
			b.WriteString("\n  " + fe.String())
		}
		if re.Total > len(re.Errors) {
			fmt.Fprintf(&b, "\n  … and %d more", re.Total-len(re.Errors))
		}
		fmt.Fprintf(&b, "\n%s", e.committed())
		return b.String()
	}
	return fmt.Sprintf("%v (%s)", e.Err, e.committed())
}

func (e *ImportError) committed() string {
	if e.CommittedLines == 0 {
		return "nothing was written"
	}
	return fmt.Sprintf("lines 1-%d were written, nothing after them", e.CommittedLines)
}

// Unwrap returns the cause.
func (e *ImportError) Unwrap() error { return e.Err }

// ImportFile streams records from r (format FormatJSONL or FormatCSV, see
// docs/ingestion.md) into institutionID's data, importChunk records per
// transaction, in constant memory. Records apply in file order: a record
// whose id an earlier record of the same chunk has starts a new chunk, so a
// file may book or reverse a pending transaction it created earlier. With
// institutionID "", the file's first record must be an institution record,
// which names it. progress (may be nil) gets a progress bar when it is a
// terminal and a line every few seconds otherwise. After a problem, the
// rest of the file is still read to report more bad lines (up to
// MaxListedErrors), but nothing more is written; the error is *ImportError.
func ImportFile(ctx context.Context, svc *Service, institutionID, format string, r io.Reader, progress io.Writer) (Stats, error) {
	if institutionID != "" && !ValidInstitutionID(institutionID) {
		return Stats{}, fmt.Errorf("ingest.ImportFile: institution id %q: want 1-64 letters, digits, '_', '-' or '.'", institutionID)
	}
	im := &importer{svc: svc, ctx: ctx, v: validator{institutionID: institutionID, now: svc.now()}}
	counted := &countingReader{r: r}
	im.progress = newProgress(progress, sizeOf(r), counted)
	var err error
	switch format {
	case FormatJSONL:
		err = im.jsonl(counted)
	case FormatCSV:
		err = im.csv(counted)
	default:
		return Stats{}, fmt.Errorf("ingest.ImportFile: unknown format %q (want jsonl or csv)", format)
	}
	if err == nil && im.errs.empty() {
		err = im.flush()
	}
	im.progress.done(im.st)
	switch {
	case !im.errs.empty():
		return im.st, &ImportError{CommittedLines: im.committedLines, Err: &im.errs}
	case err != nil:
		return im.st, &ImportError{CommittedLines: im.committedLines, Err: err}
	}
	return im.st, nil
}

type importer struct {
	svc      *Service
	ctx      context.Context
	v        validator
	batch    *Batch
	st       Stats
	errs     RecordsError
	progress *progress
	records  int // records read
	// lastLine is the line of the last record added to the batch;
	// committedLines the last line of the last committed batch.
	lastLine, committedLines int
}

// record handles one decoded record (or its decoding problem) at line.
func (im *importer) record(line int, rec any, fe *FieldError) error {
	p := pos{index: im.records, line: line}
	im.records++
	im.st.Lines = line
	if fe == nil && im.v.institutionID == "" {
		// The first record names the institution.
		in, ok := rec.(*InstitutionRecord)
		if !ok {
			e := p.err("record_type", "the first record must be an institution record when no institution is given")
			fe = &e
		} else if !ValidInstitutionID(in.ID) {
			e := p.err("id", "an institution id is 1-64 letters, digits, '_', '-' or '.'")
			fe = &e
		} else {
			im.v.institutionID = in.ID
		}
	}
	if fe != nil {
		fe.Index, fe.Line = p.index, p.line
		im.errs.add(*fe)
		if im.v.institutionID == "" {
			return errTooManyProblems // no institution: nothing else can be checked
		}
		return im.stopIfFull()
	}
	if !im.errs.empty() {
		// Writing stopped: only look for more problems, in a scratch batch.
		if fe := im.v.add(newBatch(im.v.institutionID), p, rec); fe != nil {
			im.errs.add(*fe)
		}
		return im.stopIfFull()
	}
	if im.batch == nil {
		im.batch = newBatch(im.v.institutionID)
	}
	_, k := recordKey(rec)
	if _, dup := im.batch.keys[k]; dup || im.batch.Len() >= importChunk {
		if err := im.flush(); err != nil {
			return err
		}
		im.batch = newBatch(im.v.institutionID)
	}
	if fe := im.v.add(im.batch, p, rec); fe != nil {
		im.errs.add(*fe)
		return im.stopIfFull()
	}
	im.lastLine = line
	if im.records%1024 == 0 {
		im.progress.update(im.st, false)
	}
	return nil
}

var errTooManyProblems = errors.New("too many problems")

func (im *importer) stopIfFull() error {
	if im.errs.Total >= MaxListedErrors {
		return errTooManyProblems
	}
	return nil
}

// flush writes the current chunk in one transaction.
func (im *importer) flush() error {
	if im.batch == nil || im.batch.Len() == 0 {
		return nil
	}
	if err := im.ctx.Err(); err != nil {
		return err
	}
	st, err := im.svc.Apply(im.ctx, im.batch)
	if err != nil {
		var re *RecordsError
		if errors.As(err, &re) {
			for _, fe := range re.Errors {
				im.errs.add(fe)
			}
			im.errs.Total += re.Total - len(re.Errors)
			return errTooManyProblems // the chunk's problems are the report
		}
		return err
	}
	im.st.add(st)
	im.committedLines = im.lastLine
	im.batch = nil
	im.progress.update(im.st, true)
	return nil
}

func (im *importer) jsonl(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if len(strings.TrimSpace(string(text))) == 0 {
			continue
		}
		rec, fe := decodeLine(text)
		if err := im.record(line, rec, fe); err != nil {
			return ignoreTooMany(err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes", line+1, maxLine)
		}
		return fmt.Errorf("reading line %d: %w", line+1, err)
	}
	return nil
}

func (im *importer) csv(r io.Reader) error {
	cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
	cr.FieldsPerRecord = -1 // checked per row, to name the line
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("line 1: %w", err)
	}
	cols, fe := csvHeader(header)
	if fe != nil {
		fe.Line = 1
		im.errs.add(*fe)
		return nil
	}
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				im.errs.add(FieldError{Index: im.records, Line: pe.StartLine, Reason: "malformed CSV: " + pe.Err.Error()})
				return nil // a broken CSV stream cannot be read further
			}
			return err
		}
		line, _ := cr.FieldPos(0)
		if len(row) == 1 && strings.TrimSpace(row[0]) == "" {
			continue
		}
		rec, fe := decodeCSVRow(cols, row)
		if err := im.record(line, rec, fe); err != nil {
			return ignoreTooMany(err)
		}
	}
}

func ignoreTooMany(err error) error {
	if errors.Is(err, errTooManyProblems) {
		return nil
	}
	return err
}

// Progress.

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// sizeOf is the size of a regular file, or 0 when unknown.
func sizeOf(r io.Reader) int64 {
	f, ok := r.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return 0
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	return fi.Size()
}

// progress draws a bar on a terminal and writes plain lines elsewhere.
type progress struct {
	w        io.Writer
	terminal bool
	size     int64
	read     *countingReader
	start    time.Time
	last     time.Time
	drawn    bool
}

func newProgress(w io.Writer, size int64, read *countingReader) *progress {
	p := &progress{w: w, size: size, read: read, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	p.last = p.start
	return p
}

func (p *progress) update(st Stats, chunk bool) {
	if p.w == nil {
		return
	}
	now := time.Now()
	every := 5 * time.Second
	if p.terminal {
		every = 100 * time.Millisecond
	}
	if now.Sub(p.last) < every || (!chunk && !p.terminal) {
		return
	}
	p.last = now
	p.draw(st, now)
}

func (p *progress) draw(st Stats, now time.Time) {
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(st.Records) / elapsed
	}
	pct := -1.0
	if p.size > 0 {
		pct = min(100, 100*float64(p.read.n)/float64(p.size))
	}
	if p.terminal {
		const width = 30
		bar := strings.Repeat("·", width)
		if pct >= 0 {
			done := int(pct / 100 * width)
			bar = strings.Repeat("█", done) + strings.Repeat("·", width-done)
		}
		pctText := "   "
		if pct >= 0 {
			pctText = fmt.Sprintf("%3.0f%%", pct)
		}
		fmt.Fprintf(p.w, "\r%s [%s] %d records written, %.0f/s ", pctText, bar, st.Records, rate)
		p.drawn = true
		return
	}
	if pct >= 0 {
		fmt.Fprintf(p.w, "import: %d records written (%.0f%% of the file read), %.0f records/s\n", st.Records, pct, rate)
	} else {
		fmt.Fprintf(p.w, "import: %d records written, %.0f records/s\n", st.Records, rate)
	}
}

func (p *progress) done(st Stats) {
	if p.w == nil {
		return
	}
	if p.terminal {
		p.draw(st, time.Now())
		fmt.Fprintln(p.w)
		return
	}
	if st.Records > 0 || p.drawn {
		p.draw(st, time.Now())
	}
}
