"""The monthly analysis report (月度分析报告): figures (`figures`), topics (`topics`), charts
(`charts`), the PDF and XLSX documents (`documents`), and making and finding them (`service`)."""
