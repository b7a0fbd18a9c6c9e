using System.Globalization;
using System.IO.Compression;
using System.Security;
using System.Text;
using System.Xml;
using Platform.Functions.Jobs.Files;

namespace Platform.Functions.Reports.Rendering;

/// <summary>
/// One sheet per table (named after the table), header row in bold, every row. Numbers are number cells with a
/// format by kind (counts <c>#,##0</c>, money <c>#,##0.00</c>, percentages as <c>12.5%</c> for 12.5), dates and
/// timestamps are date cells (UTC), text is an inline string neutralised against formula injection and escaped the
/// way the export's <see cref="TabularWriter"/> escapes it.
/// </summary>
public static class XlsxReportRenderer
{
    private const int HeaderStyle = 1;

    private static readonly XmlWriterSettings XmlSettings = new() { Encoding = new UTF8Encoding(false), CloseOutput = true };

    public static Task RenderAsync(ReportDocument document, Stream output, CancellationToken cancellationToken)
    {
        var tables = document.Sections.SelectMany(s => s.Tables).ToList();
        if (tables.Count == 0)
        {
            // A workbook needs a sheet: an empty report still opens.
            tables.Add(new ReportTable("report", document.Title, [new ReportColumn("note", ReportValueKind.Text)], [["This report has no tables."]]));
        }

        var names = ReportFormats.UniqueNames(tables.Select(t => t.Name), 31);
        using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
        Part(zip, "[Content_Types].xml", ContentTypes(tables.Count));
        Part(zip, "_rels/.rels", """<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>""");
        var workbook = new StringBuilder("""<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>""");
        var rels = new StringBuilder("""<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">""");
        for (var i = 1; i <= tables.Count; i++)
        {
            workbook.Append(CultureInfo.InvariantCulture, $"""<sheet name="{SecurityElement.Escape(names[i - 1])}" sheetId="{i}" r:id="rId{i}"/>""");
            rels.Append(CultureInfo.InvariantCulture, $"""<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{i}.xml"/>""");
        }

        rels.Append(CultureInfo.InvariantCulture, $"""<Relationship Id="rId{tables.Count + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>""");
        Part(zip, "xl/workbook.xml", workbook.Append("</sheets></workbook>").ToString());
        Part(zip, "xl/_rels/workbook.xml.rels", rels.ToString());
        Part(zip, "xl/styles.xml", Styles);
        for (var i = 0; i < tables.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Sheet(zip, $"xl/worksheets/sheet{i + 1}.xml", tables[i]);
        }

        return Task.CompletedTask;
    }

    private static void Sheet(ZipArchive zip, string path, ReportTable table)
    {
        const string ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
        using var xml = XmlWriter.Create(zip.CreateEntry(path, CompressionLevel.Optimal).Open(), XmlSettings);
        xml.WriteStartDocument(standalone: true);
        xml.WriteStartElement("worksheet", ns);
        xml.WriteStartElement("sheetViews", ns);
        xml.WriteStartElement("sheetView", ns);
        xml.WriteAttributeString("workbookViewId", "0");
        xml.WriteStartElement("pane", ns);
        xml.WriteAttributeString("ySplit", "1");
        xml.WriteAttributeString("topLeftCell", "A2");
        xml.WriteAttributeString("state", "frozen");
        xml.WriteEndElement();
        xml.WriteEndElement();
        xml.WriteEndElement();
        if (table.Columns.Count > 0)
        {
            xml.WriteStartElement("cols", ns);
            xml.WriteStartElement("col", ns);
            xml.WriteAttributeString("min", "1");
            xml.WriteAttributeString("max", table.Columns.Count.ToString(CultureInfo.InvariantCulture));
            xml.WriteAttributeString("width", "18");
            xml.WriteAttributeString("customWidth", "1");
            xml.WriteEndElement();
            xml.WriteEndElement();
        }

        xml.WriteStartElement("sheetData", ns);
        Row(xml, 1, [.. table.Columns.Select(c => (object?)c.Name)], table.Columns, header: true);
        var number = 2;
        foreach (var row in table.Rows)
        {
            Row(xml, number++, row, table.Columns, header: false);
        }

        xml.WriteEndElement();
        xml.WriteEndElement();
        xml.WriteEndDocument();
    }

    private static void Row(XmlWriter xml, int number, IReadOnlyList<object?> values, IReadOnlyList<ReportColumn> columns, bool header)
    {
        const string ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
        var row = number.ToString(CultureInfo.InvariantCulture);
        xml.WriteStartElement("row", ns);
        xml.WriteAttributeString("r", row);
        for (var i = 0; i < columns.Count && i < values.Count; i++)
        {
            var value = values[i];
            if (value is null)
            {
                continue;
            }

            xml.WriteStartElement("c", ns);
            xml.WriteAttributeString("r", XlsxSheet.ColumnName(i) + row);
            var kind = columns[i].Kind;
            if (header)
            {
                xml.WriteAttributeString("s", HeaderStyle.ToString(CultureInfo.InvariantCulture));
            }

            if (!header && ReportFormats.AsNumber(value) is { } n && double.IsFinite(n))
            {
                xml.WriteAttributeString("s", StyleOf(kind).ToString(CultureInfo.InvariantCulture));
                xml.WriteElementString("v", ns, n.ToString("R", CultureInfo.InvariantCulture));
            }
            else if (!header && value is DateTimeOffset or DateTime)
            {
                var at = value is DateTimeOffset offset ? offset.UtcDateTime : DateTime.SpecifyKind((DateTime)value, DateTimeKind.Utc);
                xml.WriteAttributeString("s", (kind == ReportValueKind.Date ? 5 : 6).ToString(CultureInfo.InvariantCulture));
                xml.WriteElementString("v", ns, at.ToOADate().ToString("R", CultureInfo.InvariantCulture));
            }
            else if (!header && value is bool flag)
            {
                xml.WriteAttributeString("t", "b");
                xml.WriteElementString("v", ns, flag ? "1" : "0");
            }
            else
            {
                xml.WriteAttributeString("t", "inlineStr");
                xml.WriteStartElement("is", ns);
                xml.WriteStartElement("t", ns);
                xml.WriteAttributeString("xml", "space", null, "preserve");
                xml.WriteString(TabularWriter.XmlEscapes(TabularWriter.Neutralise(ReportFormats.Text(value, kind, forPeople: false) ?? "")));
                xml.WriteEndElement();
                xml.WriteEndElement();
            }

            xml.WriteEndElement();
        }

        xml.WriteEndElement();
    }

    private static int StyleOf(ReportValueKind kind) => kind switch
    {
        ReportValueKind.Count => 2,
        ReportValueKind.Money => 3,
        ReportValueKind.Percent => 4,
        _ => 0,
    };

    private static void Part(ZipArchive zip, string path, string xml)
    {
        using var stream = zip.CreateEntry(path, CompressionLevel.Optimal).Open();
        stream.Write(Encoding.UTF8.GetBytes(xml));
    }

    private static string ContentTypes(int sheets)
    {
        var types = new StringBuilder("""<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>""");
        for (var i = 1; i <= sheets; i++)
        {
            types.Append(CultureInfo.InvariantCulture, $"""<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>""");
        }

        return types.Append("</Types>").ToString();
    }

    /// <summary>Cell styles: 0 general, 1 header (bold), 2 count, 3 money, 4 percent (12.5 shows 12.5%), 5 date, 6 timestamp.</summary>
    private const string Styles = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="3"><numFmt numFmtId="164" formatCode="0.0%"/><numFmt numFmtId="165" formatCode="yyyy\-mm\-dd"/><numFmt numFmtId="166" formatCode="yyyy\-mm\-dd\ hh:mm:ss"/></numFmts><fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="7"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/><xf numFmtId="3" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>""";
}
