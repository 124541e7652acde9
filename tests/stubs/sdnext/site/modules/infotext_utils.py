# a1111 compatibility module: unused   (SD.Next's file has only this line: no PasteField)
